import BrigCore
import BrigOCI

enum ListVerb: Verb {
    static let name = "list"
    static let usage = "[-q] [--format table|json]"
    static let summary = "list containers started by brig with the given root"
    static let flags = [
        FlagSpec(["format", "f"], value: "table|json", "select one of: table or json (default: \"table\")"),
        FlagSpec(["quiet", "q"], "display only container IDs"),
    ]

    static func run(_ args: ParsedArgs, _ ctx: Context) throws(RuntimeError) -> Int32 {
        let format = args.value("format") ?? "table"
        guard format == "table" || format == "json" else { throw RuntimeError(.usage, "invalid format option \"\(format)\"") }
        var states: [ContainerState] = []
        for id in ctx.store.ids() {
            do {
                states.append(try ctx.load(id).state)
            } catch {
                // Shown (as stopped: nothing about it can be derived) and reported, never skipped:
                // `brig delete --force ID` removes it.
                if error.kind == .notFound { continue }  // deleted meanwhile
                ctx.warn("load container \(id): \(error)")
                states.append(ContainerRecord.placeholder(id: id).state(.stopped))
            }
        }
        if args.has("quiet") {
            ctx.output(states.map { $0.id + "\n" }.joined())
        } else if format == "json" {
            var entries: [String] = []
            for s in states { entries.append(try entry(s)) }
            ctx.output("[" + entries.joined(separator: ",") + "]\n")
        } else {
            let rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]] +
                states.map { [$0.id, "\($0.pid)", $0.status.rawValue, $0.bundle, $0.created, $0.owner.isEmpty ? "root" : $0.owner] }
            ctx.output(table(rows))
        }
        return 0
    }

    /// runc's `list --format json` entry, keys in its order.
    static func entry(_ s: ContainerState) throws(RuntimeError) -> String {
        try orderedJSON([("ociVersion", s.ociVersion), ("id", s.id), ("pid", s.pid), ("status", s.status.rawValue),
                         ("bundle", s.bundle), ("rootfs", s.rootfs), ("created", s.created),
                         ("annotations", s.annotations), ("owner", s.owner.isEmpty ? "root" : s.owner)])
    }

    static func table(_ rows: [[String]]) -> String {
        var widths = [Int](repeating: 0, count: rows.first?.count ?? 0)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        return rows.map { r in
            r.enumerated().map { i, c in i == r.count - 1 ? c : c + String(repeating: " ", count: widths[i] - c.count + 3) }
                .joined() + "\n"
        }.joined()
    }
}
