import BrigCore
import BrigLinux
import BrigOCI
import Glibc

enum PsVerb: Verb {
    static let name = "ps"
    static let usage = "[--format table|json] <container-id> [ps options]"
    static let summary = "display the processes running inside a container"
    static let flags = [FlagSpec(["format", "f"], value: "table|json", "select one of: table or json (default: \"table\")")]
    static let stopsAtPositional = true

    static func run(_ args: ParsedArgs, _ ctx: Context) throws(RuntimeError) -> Int32 {
        let id = try requireID(args)
        let container = try ctx.load(id)
        // runc: a stopped container has no processes (exit 0; `null` in JSON).
        let pids = try container.pids()
        let format = args.value("format") ?? "table"
        if format == "json" {
            ctx.output((pids.isEmpty ? "null" : try ctx.json(pids, pretty: false)) + "\n")
            return 0
        }
        guard format == "table" else { throw RuntimeError(.usage, "invalid format option \"\(format)\"") }
        if !container.backend.reportsHostPids {
            // Guest pids: the host's ps(1) cannot describe them.
            ctx.output("PID\n" + pids.map { "\($0)\n" }.joined())
            return 0
        }
        // As runc: run ps(1) with the given options and keep the header and the container's lines.
        var psArgs = Array(args.positionals.dropFirst())
        if psArgs.isEmpty { psArgs = ["-ef"] }
        let out = try capture(["/bin/ps"] + psArgs)
        let lines = out.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let header = lines.first, let col = header.split(separator: " ").firstIndex(of: "PID") else {
            throw RuntimeError(.usage, "ps output has no PID column (options: \(psArgs.joined(separator: " ")))")
        }
        let wanted = Set(pids)
        var text = header + "\n"
        for line in lines.dropFirst() where !line.isEmpty {
            let fields = line.split(separator: " ")
            if col < fields.count, let pid = Int32(fields[col]), wanted.contains(pid) { text += line + "\n" }
        }
        ctx.output(text)
        return 0
    }

    static func capture(_ argv: [String]) throws(RuntimeError) -> String {
        do {
            let o = Spawn.Options(path: argv[0], args: argv, env: ["PATH=/usr/bin:/bin", "COLUMNS=2000"])
            let (exit, out) = try Spawn.output(o)
            if exit != .exited(0) { throw RuntimeError(.system, "\(argv.joined(separator: " ")) failed: \(exit)") }
            return String(decoding: out, as: UTF8.self)
        } catch let e as RuntimeError { throw e } catch { throw RuntimeError.wrap(error, "ps") }
    }
}
