import BrigCore
import BrigOCI

enum CreateVerb: Verb {
    static let name = "create"
    static let usage = "[--bundle DIR] [--pid-file FILE] [--console-socket PATH] [--no-pivot] [--no-new-keyring] [--preserve-fds N] <container-id>"
    static let summary = "create a container (parked before its process runs)"
    static let flags = [
        FlagSpec(["bundle", "b"], value: "DIR", "path to the root of the bundle directory (default: current directory)"),
        FlagSpec(["pid-file"], value: "FILE", "file to write the container process's pid to"),
        FlagSpec(["console-socket"], value: "PATH", "Unix socket that receives the pty master when process.terminal is true"),
        FlagSpec(["no-pivot"], "do not use pivot_root (for ramdisk roots)"),
        FlagSpec(["no-new-keyring"], "do not create a new session keyring"),
        FlagSpec(["preserve-fds"], value: "N", "pass N additional file descriptors (3..3+N-1) to the container"),
    ]

    static func run(_ args: ParsedArgs, _ ctx: Context) throws(RuntimeError) -> Int32 {
        let id = try requireID(args)
        _ = try create(args, ctx, id: id, detach: true)
        return 0
    }

    /// Shared by `create` and `run`: loads the bundle, checks flags against it, reserves the id,
    /// and creates; on failure removes everything (state dir included).
    static func create(_ args: ParsedArgs, _ ctx: Context, id: String, detach: Bool,
                       consoleFD: Int32? = nil) throws(RuntimeError) -> ContainerRecord {
        try StateStore.validate(id: id)
        let (bundle, spec) = try Bundle.load(args.value("bundle"))
        let terminal = spec.process?.terminal ?? false
        if terminal && detach && args.value("console-socket") == nil {
            throw RuntimeError(.usage, "cannot allocate tty if brig will detach without setting console socket")
        }
        if !terminal && args.value("console-socket") != nil {
            throw RuntimeError(.usage, "cannot use console socket if brig will not detach or allocate tty")
        }
        var options = CreateOptions(id: id, bundle: bundle, spec: spec)
        options.pidFile = args.value("pid-file")
        options.consoleSocket = args.value("console-socket")
        options.consoleFD = consoleFD
        options.noPivot = args.has("no-pivot")
        options.noNewKeyring = args.has("no-new-keyring")
        options.systemdCgroup = ctx.systemdCgroup
        options.rootless = ctx.rootless
        options.foreground = !detach
        if let n = args.value("preserve-fds") {
            guard let v = Int(n), v >= 0, v < 4096 else { throw RuntimeError(.usage, "--preserve-fds: invalid value \"\(n)\"") }
            options.preserveFDs = v
        }
        let record = try ctx.containers.create(options, select: ctx.selectBackend)
        ctx.debug("created container \(id) with pid \(record.pid)")
        return record
    }
}
