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
        return format(seconds: Int64(ts.tv_sec), nanoseconds: Int(ts.tv_nsec))
    }

    /// The UTC date and time of `seconds` since the epoch, computed here rather than with
    /// gmtime_r: glibc's loads /etc/localtime on its first call (seven syscalls and the tzfile
    /// parser's pages in every process that writes a state record), though UTC needs no zone.
    public static func format(seconds: Int64, nanoseconds: Int) -> String {
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secs = Int(seconds - days * 86_400)
        // Civil date from days since 1970-01-01, proleptic Gregorian (H. Hinnant's algorithm).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        func pad(_ v: Int64, _ w: Int) -> String {
            let s = String(v); return String(repeating: "0", count: max(0, w - s.count)) + s
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T" +
            "\(pad(Int64(secs / 3600), 2)):\(pad(Int64(secs / 60 % 60), 2)):\(pad(Int64(secs % 60), 2))." +
            pad(Int64(nanoseconds), 9) + "Z"
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
