import BrigCore
import BrigOCI

enum PauseVerb: Verb {
    static let name = "pause"
    static let usage = "<container-id>"
    static let summary = "suspend all processes of a container (cgroup freezer)"
    static let flags: [FlagSpec] = []

    static func run(_ args: ParsedArgs, _ ctx: Context) throws(RuntimeError) -> Int32 {
        try locked(args, ctx) { (c: Container) throws(RuntimeError) in try c.pause() }
    }

    /// Shared by pause and resume: lock, load, act.
    static func locked(_ args: ParsedArgs, _ ctx: Context, _ act: (Container) throws(RuntimeError) -> Void) throws(RuntimeError) -> Int32 {
        let id = try requireID(args)
        let lock = try ctx.store.lock(id)
        defer { lock.unlock() }
        try act(try ctx.load(id))
        return 0
    }
}

enum ResumeVerb: Verb {
    static let name = "resume"
    static let usage = "<container-id>"
    static let summary = "resume all processes of a paused container"
    static let flags: [FlagSpec] = []

    static func run(_ args: ParsedArgs, _ ctx: Context) throws(RuntimeError) -> Int32 {
        try PauseVerb.locked(args, ctx) { (c: Container) throws(RuntimeError) in try c.resume() }
    }
}
