import BrigCore
import BrigOCI

enum StartVerb: Verb {
    static let name = "start"
    static let usage = "<container-id>"
    static let summary = "start a created container (run its process)"
    static let flags: [FlagSpec] = []

    static func run(_ args: ParsedArgs, _ ctx: Context) throws(RuntimeError) -> Int32 {
        let id = try requireID(args)
        let lock = try ctx.store.lock(id)
        defer { lock.unlock() }
        try start(id, ctx)
        return 0
    }

    static func start(_ id: String, _ ctx: Context) throws(RuntimeError) {
        let (record, status) = try ctx.load(id)
        guard Lifecycle.canStart(status) else { throw Lifecycle.forbidden("start", id: id, status: status) }
        try ctx.backend(for: record).start(record, store: ctx.store)
        // poststart failures are warnings; the container keeps running (runtime.md).
        for failure in HookRunner.runAll(record.hooks?.poststart ?? [], kind: "poststart", state: record.state(.running)) {
            ctx.warn(failure.description)
        }
    }
}
