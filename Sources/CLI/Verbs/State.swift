import BrigCore
import BrigOCI

enum StateVerb: Verb {
    static let name = "state"
    static let usage = "<container-id>"
    static let summary = "output the state of a container (OCI state JSON)"
    static let flags: [FlagSpec] = []

    static func run(_ args: ParsedArgs, _ ctx: Context) throws(RuntimeError) -> Int32 {
        let id = try requireID(args)
        try StateStore.validate(id: id)
        ctx.output(try ctx.json(try ctx.load(id).state) + "\n")
        return 0
    }
}
