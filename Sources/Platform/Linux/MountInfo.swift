/// One line of /proc/PID/mountinfo:
/// `id parent maj:min root mountpoint options [optional…] - fstype source superoptions`.
/// The one parser of that file (cgroup layout detection, mount propagation, cgroup mounts).
public struct MountInfo: Equatable, Sendable {
    public var id: Int
    public var parent: Int
    public var root: String
    public var mountPoint: String
    public var options: String
    /// Optional fields: `shared:N`, `master:N`, `propagate_from:N`, `unbindable`.
    public var optional: [String]
    public var fsType: String
    public var source: String
    public var superOptions: String

    public init(id: Int = 0, parent: Int = 0, root: String = "/", mountPoint: String, options: String = "rw",
                optional: [String] = [], fsType: String, source: String = "", superOptions: String = "") {
        self.id = id; self.parent = parent; self.root = root; self.mountPoint = mountPoint; self.options = options
        self.optional = optional; self.fsType = fsType; self.source = source; self.superOptions = superOptions
    }

    /// Whether the mount is in a peer group (its propagation is shared).
    public var isShared: Bool { optional.contains { $0.hasPrefix("shared:") } }

    /// Parses the whole file; malformed lines are skipped.
    public static func parse(_ text: String) -> [MountInfo] {
        text.split(separator: "\n").compactMap { line in
            let f = line.split(separator: " ").map(String.init)
            guard f.count >= 9, let dash = f[6...].firstIndex(of: "-"), f.count >= dash + 3,
                  let id = Int(f[0]), let parent = Int(f[1]) else { return nil }
            return MountInfo(id: id, parent: parent, root: unescape(f[3]), mountPoint: unescape(f[4]), options: f[5],
                             optional: Array(f[6..<dash]), fsType: f[dash + 1], source: unescape(f[dash + 2]),
                             superOptions: dash + 3 < f.count ? f[dash + 3] : "")
        }
    }

    /// The calling process's mounts.
    public static func current() throws -> [MountInfo] { parse(try Files.readString("/proc/self/mountinfo")) }

    /// The mount `path` (absolute, clean) is on: the last-mounted of the mounts with the longest
    /// mount point that is `path` or one of its ancestors.
    public static func containing(_ path: String, in mounts: [MountInfo]) -> MountInfo? {
        func covers(_ mp: String) -> Bool { mp == "/" || path == mp || path.hasPrefix(mp + "/") }
        var best: MountInfo?
        for m in mounts where covers(m.mountPoint) {
            if best == nil || m.mountPoint.count >= best!.mountPoint.count { best = m }
        }
        return best
    }

    /// mountinfo escapes space, tab, newline and backslash as octal (`\040`).
    public static func unescape(_ s: String) -> String {
        guard s.utf8.contains(0x5c) else { return s }
        var out: [UInt8] = []
        let b = Array(s.utf8)
        var i = 0
        while i < b.count {
            if b[i] == 0x5c, i + 3 < b.count, let v = UInt8(String(decoding: b[(i + 1)...(i + 3)], as: UTF8.self), radix: 8) {
                out.append(v); i += 4
            } else {
                out.append(b[i]); i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
