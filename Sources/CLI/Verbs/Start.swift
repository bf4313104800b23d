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
        try ctx.load(id).start()
    }
}
