import BrigCore
import BrigOCI

enum KillVerb: Verb {
    static let name = "kill"
    static let usage = "[--all] <container-id> [SIGNAL]"
    static let summary = "send a signal (default TERM) to the container's init process"
    static let flags = [FlagSpec(["all", "a"], "send the signal to every process in the container")]

    static func run(_ args: ParsedArgs, _ ctx: Context) throws(RuntimeError) -> Int32 {
        let id = try requireID(args)
        let sigText = args.positionals.count > 1 ? args.positionals[1] : "TERM"
        guard let signal = Tables.signal(sigText) else { throw RuntimeError(.usage, "unknown signal \"\(sigText)\"") }
        let lock = try ctx.store.lock(id)
        defer { lock.unlock() }
        let (record, status) = try ctx.load(id)
        // With --all a stopped container is not an error (as in runc): its init is gone but processes
        // it left in its cgroup get the signal. containerd's runc shim sends `kill --all ID KILL`
        // after a container's init exits and fails StopContainer if that fails.
        let all = args.has("all")
        guard Lifecycle.canKill(status) || all else { throw Lifecycle.forbidden("kill", id: id, status: status) }
        try ctx.backend(for: record).kill(record, signal: signal, all: all)
        return 0
    }
}
