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
        try ctx.load(id).kill(signal: signal, all: args.has("all"))
        return 0
    }
}
