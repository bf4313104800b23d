import BrigCgroups
import BrigCore
import BrigLinux
import BrigMicroVM
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
        let (record, status) = try ctx.load(id)
        if status == .stopped { throw RuntimeError(.invalidState, "container \(id) is not running") }
        // A microvm container's cgroups are the guest's: its agent reads them.
        let vm = ctx.backend(for: record) as? MicroVMBackend
        let cgroups = record.cgroupManager
        func stats() throws(RuntimeError) -> CgroupStats {
            if let vm { return try vm.stats(record).cgroup }
            do { return try cgroups.stats() } catch { throw RuntimeError.wrap(error, "events \(id)") }
        }
        func oomKills() -> UInt64? {
            if let vm { return (try? vm.stats(record))?.oomKills }
            return try? cgroups.oomKillCount()
        }
        if args.has("stats") {
            ctx.output(try event("stats", id, try stats()))
            return 0
        }
        let text = args.value("interval") ?? "5s"
        guard let interval = parseDuration(text), interval > 0 else {
            throw RuntimeError(.usage, "--interval: invalid duration \"\(text)\" (e.g. 5s, 500ms, 1m)")
        }
        // Stats every interval; an "oom" event whenever the OOM-kill count grows. Ends when the
        // container stops.
        var ooms = oomKills() ?? 0
        var next = 0.0
        let step = min(interval, vm == nil ? 0.1 : 1)   // (each look at a VM is an agent connection)
        while true {
            let (rec, st) = (try? ctx.load(id)) ?? (record, .stopped)
            _ = rec
            if st == .stopped { return 0 }
            let now = oomKills() ?? ooms
            if now > ooms {
                ooms = now
                ctx.output(try event("oom", id, nil))
            }
            if next <= 0 {
                ctx.output(try event("stats", id, try stats()))
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
