import Glibc

/// Facts about a process read from /proc, used to tell whether a container's pid is still the
/// container (pid plus start time, so that a reused pid is not mistaken for it).
public struct ProcStat: Equatable, Sendable {
    public var state: Character
    public var ppid: Int32
    public var startTime: UInt64

    public init(state: Character, ppid: Int32, startTime: UInt64) {
        self.state = state; self.ppid = ppid; self.startTime = startTime
    }

    /// Parses /proc/<pid>/stat text. The command may contain spaces and parentheses, so fields
    /// are counted from the last ')'.
    public static func parse(_ text: String) -> ProcStat? {
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ", omittingEmptySubsequences: true)
        // fields[0] is field 3 (state); start time is field 22.
        guard fields.count >= 20, let state = fields[0].first, let ppid = Int32(fields[1]),
              let start = UInt64(fields[19]) else { return nil }
        return ProcStat(state: state, ppid: ppid, startTime: start)
    }

    public static func read(pid: Int32) -> ProcStat? {
        guard let text = try? Files.readString("/proc/\(pid)/stat") else { return nil }
        return parse(text)
    }
}

public enum ProcessLiveness {
    /// True when `pid` runs and is the same process that had `startTime` (zombies count as dead).
    public static func isAlive(pid: Int32, startTime: UInt64) -> Bool {
        guard pid > 0, let st = ProcStat.read(pid: pid) else { return false }
        return st.startTime == startTime && st.state != "Z" && st.state != "X"
    }
}

/// RFC 3339 timestamps with nanoseconds in UTC, as runc writes them.
public enum Timestamp {
    public static func now() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = ts.tv_sec
        var tmv = tm()
        gmtime_r(&t, &tmv)
        func pad(_ v: Int32, _ w: Int) -> String {
            let s = String(v); return String(repeating: "0", count: max(0, w - s.count)) + s
        }
        let ns = String(ts.tv_nsec)
        return "\(tmv.tm_year + 1900)-\(pad(tmv.tm_mon + 1, 2))-\(pad(tmv.tm_mday, 2))T" +
            "\(pad(tmv.tm_hour, 2)):\(pad(tmv.tm_min, 2)):\(pad(tmv.tm_sec, 2))." +
            String(repeating: "0", count: 9 - ns.count) + ns + "Z"
    }
}

public enum Proc {
    /// Whether the calling process runs in a user namespace other than the initial one (its
    /// uid_map is not the identity over the whole range), as runc's userns.RunningInUserNS.
    public static var inUserNamespace: Bool {
        guard let map = try? Files.readString("/proc/self/uid_map") else { return false }
        let f = map.split(whereSeparator: { $0 == " " || $0 == "\n" })
        return !(f.count == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295")
    }
}
