import BrigCgroups
import BrigCore
import BrigLinux
import BrigOCI
import Glibc

enum SpecVerb: Verb {
    static let name = "spec"
    static let usage = "[--bundle DIR] [--rootless]"
    static let summary = "create a new specification file (config.json)"
    static let flags = [
        FlagSpec(["bundle", "b"], value: "DIR", "path to the root of the bundle directory"),
        FlagSpec(["rootless"], "generate a configuration for a rootless container"),
    ]

    static func run(_ args: ParsedArgs, _ ctx: Context) throws(RuntimeError) -> Int32 {
        let bundle = Bundle.absolute(args.value("bundle") ?? ".")
        let path = bundle + "/config.json"
        if Files.exists(path) { throw RuntimeError(.exists, "File \(path) exists. Remove it first") }
        let unified = (try? CgroupLayout.current().mode) == .unified
        let spec = DefaultSpec.make(rootless: args.has("rootless"), uid: getuid(), gid: getgid(), cgroupNamespace: unified)
        let text = try ctx.json(spec) + "\n"
        do { try Files.writeAtomically(path, Array(text.utf8), mode: 0o666 & ~0o022) } catch { throw RuntimeError.wrap(error) }
        return 0
    }
}
