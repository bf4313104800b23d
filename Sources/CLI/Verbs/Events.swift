import BrigCore
import BrigLinux
import BrigOCI
import Glibc

enum EventsVerb: Verb {
    static let name = "events"
    static let usage = "[--stats] [--interval DURATION] <container-id>"
    static let summary = "display container events (stats, OOM) as JSON lines"
    static let flags = [
        FlagSpec(["stats"], "display the container's stats once, then exit"),
        FlagSpec(["interval"], value: "DURATION", "stats collection interval (default: 5s)"),
    ]

    /// runc's event line: `{"type":…,"id":…,"data":…}`, in that order.
    static func event(_ type: String, _ id: String, _ data: CgroupStats?) throws(RuntimeError) -> String {
        try orderedJSON([("type", type), ("id", id), ("data", data)]) + "\n"
    }

    static func run(_ args: ParsedArgs, _ ctx: Context) throws(RuntimeError) -> Int32 {
        let id = try requireID(args)
        let container = try ctx.load(id)
        try container.checkNotStopped()
        // The first stats: a backend without them refuses here, before anything is printed.
        let first = try container.stats()
        if args.has("stats") {
            ctx.output(try event("stats", id, first))
            return 0
        }
        let text = args.value("interval") ?? "5s"
        guard let interval = parseDuration(text), interval > 0 else {
            throw RuntimeError(.usage, "--interval: invalid duration \"\(text)\" (e.g. 5s, 500ms, 1m)")
        }
        // Stats every interval; an "oom" event whenever the OOM-kill count grows (asked at most
        // every eventsPollSeconds). Ends when the container stops (a VM's count goes with it). A stats read that fails while
        // the container lives (a busy guest) is a warning, as in runc; the stream goes on.
        var ooms = (try? container.oomKillCount()) ?? 0
        var next = 0.0
        let step = min(interval, container.backend.eventsPollSeconds)
        var stats: CgroupStats? = first
        while true {
            if (try? ctx.load(id))?.status ?? .stopped == .stopped { return 0 }
            let now = (try? container.oomKillCount()) ?? ooms
            if now > ooms {
                ooms = now
                ctx.output(try event("oom", id, nil))
            }
            if next <= 0 {
                do throws(RuntimeError) {
                    let current: CgroupStats
                    if let s = stats.take() { current = s } else { current = try container.stats() }
                    ctx.output(try event("stats", id, current))
                } catch {
                    if (try? ctx.load(id))?.status ?? .stopped == .stopped { return 0 }
                    ctx.warn("events: stats of \(id): \(error)")
                }
                next = interval
            }
            var ts = timespec(tv_sec: Int(step), tv_nsec: Int((step - Double(Int(step))) * 1e9))
            nanosleep(&ts, nil)
            next -= step
        }
    }

    static func parseDuration(_ s: String) -> Double? {
        for (suffix, mult) in [("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)] where s.hasSuffix(suffix) {
            return Double(s.dropLast(suffix.count)).map { $0 * mult }
        }
        return Double(s)
    }
}
