import BrigCore
import BrigOCI

enum PauseVerb: Verb {
    static let name = "pause"
    static let usage = "<container-id>"
    static let summary = "suspend all processes of a container (cgroup freezer)"
    static let flags: [FlagSpec] = []

    static func run(_ args: ParsedArgs, _ ctx: Context) throws(RuntimeError) -> Int32 {
        try transition(args, ctx, op: "pause", allowed: Lifecycle.canPause) { (r: ContainerRecord) throws in try ctx.backend(for: r).pause(r) }
    }

    /// Shared by pause and resume: lock, check the status allows `op`, act on the cgroup.
    static func transition(_ args: ParsedArgs, _ ctx: Context, op: String, allowed: (ContainerStatus) -> Bool,
                           _ act: (ContainerRecord) throws -> Void) throws(RuntimeError) -> Int32 {
        let id = try requireID(args)
        let lock = try ctx.store.lock(id)
        defer { lock.unlock() }
        let (record, status) = try ctx.load(id)
        guard allowed(status) else {
            throw RuntimeError(.invalidState, "cannot \(op) container \(id): it is \(status.rawValue)")
        }
        do { try act(record) } catch { throw RuntimeError.wrap(error, "\(op) \(id)") }
        return 0
    }
}

enum ResumeVerb: Verb {
    static let name = "resume"
    static let usage = "<container-id>"
    static let summary = "resume all processes of a paused container"
    static let flags: [FlagSpec] = []

    static func run(_ args: ParsedArgs, _ ctx: Context) throws(RuntimeError) -> Int32 {
        try PauseVerb.transition(args, ctx, op: "resume", allowed: Lifecycle.canResume) { (r: ContainerRecord) throws in try ctx.backend(for: r).resume(r) }
    }
}
