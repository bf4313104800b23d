import BrigLinux
import Glibc

/// How cgroups are mounted, decided as runc does (`IsCgroup2UnifiedMode` /
/// `IsCgroup2HybridMode`): by what is mounted at /sys/fs/cgroup.
public enum CgroupMode: String, Codable, Sendable {
    /// cgroup2 mounted at /sys/fs/cgroup.
    case unified
    /// cgroup v1 controllers, plus cgroup2 at /sys/fs/cgroup/unified.
    case hybrid
    /// cgroup v1 only.
    case legacy
}

/// The standard cgroup mount root.
public let defaultCgroupRoot = "/sys/fs/cgroup"

/// One cgroup v1 hierarchy (one mount, possibly several co-mounted controllers).
public struct V1Hierarchy: Codable, Equatable, Sendable {
    /// Controllers on this hierarchy, e.g. `["cpu", "cpuacct"]` or `["name=systemd"]`.
    public var controllers: [String]
    /// Mount point, e.g. `/sys/fs/cgroup/cpu,cpuacct`.
    public var mountPoint: String
    /// The caller's own cgroup on this hierarchy, relative to the mount (from /proc/self/cgroup).
    public var ownPath: String

    public init(controllers: [String], mountPoint: String, ownPath: String = "/") {
        self.controllers = controllers; self.mountPoint = mountPoint; self.ownPath = ownPath
    }
}

/// The cgroup layout of a host as seen by the calling process: the mode, the v1 hierarchies
/// and the cgroup2 mount, each with the caller's own cgroup.
public struct CgroupLayout: Codable, Equatable, Sendable {
    public var mode: CgroupMode
    /// v1 hierarchies (empty in unified mode).
    public var v1: [V1Hierarchy]
    /// The cgroup2 mount point, if any (`/sys/fs/cgroup` or `/sys/fs/cgroup/unified`).
    public var unifiedMount: String?
    /// The caller's cgroup2 path (the `0::` line), relative to the cgroup2 mount.
    public var unifiedOwnPath: String

    public init(mode: CgroupMode, v1: [V1Hierarchy] = [], unifiedMount: String? = nil, unifiedOwnPath: String = "/") {
        self.mode = mode; self.v1 = v1; self.unifiedMount = unifiedMount; self.unifiedOwnPath = unifiedOwnPath
    }

    /// A v1 layout with one hierarchy per controller under `/sys/fs/cgroup/<controller>`
    /// (the caller at `/`); `hybrid` adds cgroup2 at `/sys/fs/cgroup/unified`.
    public static func v1(_ controllers: [String], hybrid: Bool = false) -> CgroupLayout {
        CgroupLayout(mode: hybrid ? .hybrid : .legacy,
                     v1: controllers.map { V1Hierarchy(controllers: [$0], mountPoint: defaultCgroupRoot + "/" + $0) },
                     unifiedMount: hybrid ? defaultCgroupRoot + "/unified" : nil)
    }

    /// A unified (cgroup2-only) layout with the caller at `ownPath`.
    public static func unified(ownPath: String = "/") -> CgroupLayout {
        CgroupLayout(mode: .unified, unifiedMount: defaultCgroupRoot, unifiedOwnPath: ownPath)
    }

    /// The v1 hierarchy holding `controller`, if mounted.
    public func hierarchy(for controller: String) -> V1Hierarchy? {
        v1.first { $0.controllers.contains(controller) }
    }

    /// One mounted hierarchy: where it is, and its key in `CgroupState.paths`.
    public struct Mount: Equatable, Sendable {
        public var mountPoint: String
        /// The v1 controllers joined with `,` (`cpu,cpuacct`, `name=systemd`); `""` for cgroup2.
        public var key: String
        /// 1 or 2.
        public var version: Int
    }

    /// Every mounted hierarchy once: the v1 hierarchies in mount order, then cgroup2.
    public var hierarchies: [Mount] {
        v1.map { Mount(mountPoint: $0.mountPoint, key: $0.controllers.joined(separator: ","), version: 1) }
            + (unifiedMount.map { [Mount(mountPoint: $0, key: "", version: 2)] } ?? [])
    }

    /// Computes the layout from the text of /proc/self/mountinfo and /proc/self/cgroup.
    public static func parse(mountinfo: String, procCgroup: String) throws -> CgroupLayout {
        let mounts = MountInfo.parse(mountinfo)
        let own = parseProcCgroup(procCgroup)
        func last(at point: String, _ fs: String) -> MountInfo? {
            mounts.last { $0.mountPoint == point && $0.fsType == fs }
        }
        // The mount that is on top at /sys/fs/cgroup decides, as statfs would.
        let top = mounts.last { $0.mountPoint == defaultCgroupRoot }
        let unifiedOwn = own.unified ?? "/"
        if let top, top.fsType == "cgroup2" {
            return CgroupLayout(mode: .unified, unifiedMount: defaultCgroupRoot,
                                unifiedOwnPath: relative(unifiedOwn, to: top.root))
        }
        var hierarchies: [V1Hierarchy] = []
        for m in mounts where m.fsType == "cgroup" {
            let ctrls = m.superOptions.split(separator: ",").map(String.init).filter(isV1Controller)
            guard !ctrls.isEmpty else { continue }
            if let i = hierarchies.firstIndex(where: { Set($0.controllers) == Set(ctrls) }) {
                hierarchies[i].mountPoint = m.mountPoint  // a later mount hides an earlier one
                continue
            }
            let procPath = ctrls.lazy.compactMap { own.v1[$0] }.first ?? "/"
            hierarchies.append(V1Hierarchy(controllers: ctrls, mountPoint: m.mountPoint,
                                           ownPath: relative(procPath, to: m.root)))
        }
        if hierarchies.isEmpty {
            throw CgroupError.noCgroupMounts("no cgroup or cgroup2 filesystem mounted at \(defaultCgroupRoot)")
        }
        if let u = last(at: defaultCgroupRoot + "/unified", "cgroup2") {
            return CgroupLayout(mode: .hybrid, v1: hierarchies, unifiedMount: u.mountPoint,
                                unifiedOwnPath: relative(unifiedOwn, to: u.root))
        }
        return CgroupLayout(mode: .legacy, v1: hierarchies)
    }

    /// The calling process's layout, from /proc/self/mountinfo and /proc/self/cgroup.
    public static func current() throws -> CgroupLayout {
        let dir = CgroupDirectory("/proc/self")
        return try parse(mountinfo: dir.read("mountinfo"), procCgroup: dir.read("cgroup"))
    }
}

/// The cgroup mode of the calling process's mount namespace.
public func detectCgroupMode(mountinfo: String) throws -> CgroupMode {
    try CgroupLayout.parse(mountinfo: mountinfo, procCgroup: "").mode
}

/// Whether systemd is the init system (runc: /run/systemd/system is a directory).
public func systemdRunning(runDirectory: String = "/run/systemd/system") -> Bool {
    isDirectory(runDirectory)
}

// MARK: - parsing

/// Parses /proc/self/cgroup: `id:controllers:path`; v1 by controller, and the `0::` path.
func parseProcCgroup(_ text: String) -> (v1: [String: String], unified: String?) {
    var v1: [String: String] = [:]
    var unified: String?
    for line in text.split(separator: "\n") {
        let f = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        guard f.count == 3 else { continue }
        if f[0] == "0" && f[1].isEmpty { unified = String(f[2]); continue }
        for c in f[1].split(separator: ",") { v1[String(c)] = String(f[2]) }
    }
    return (v1, unified)
}

private let v1Controllers: Set<String> = [
    "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls", "net_prio", "blkio",
    "perf_event", "hugetlb", "pids", "rdma", "misc",
]

func isV1Controller(_ option: String) -> Bool {
    v1Controllers.contains(option) || option.hasPrefix("name=")
}

/// `path` relative to a mount whose root is `root` (both absolute); always starts with `/`.
func relative(_ path: String, to root: String) -> String {
    if root == "/" || root.isEmpty { return path.isEmpty ? "/" : path }
    if path == root { return "/" }
    if path.hasPrefix(root + "/") { return String(path.dropFirst(root.count)) }
    return path
}
