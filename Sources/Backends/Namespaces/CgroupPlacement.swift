import BrigLinux
import Glibc

/// Places a container in its own cgroup on every mounted hierarchy (v1 controllers, named v1
/// hierarchies and cgroup2), as runc's fs driver does, and removes what it created.
/// Resource limits are applied by BrigCgroups; this is only placement.
public struct CgroupPlacement: Sendable {
    public struct Hierarchy: Sendable, Equatable {
        public var mountpoint: String
        public var options: String   // comma-separated v1 controllers or name=..., "" for cgroup2
        public var version: Int
    }

    /// Mounted hierarchies from /proc/self/mountinfo text (MountInfo's parser: splitting each
    /// line on " - " went through the generic string-algorithm code, a measurable part of create).
    public static func hierarchies(mountinfo: String) -> [Hierarchy] {
        let known: Set<Substring> = ["cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids",
                                     "net_cls", "net_prio", "perf_event", "hugetlb", "rdma", "misc"]
        return MountInfo.parse(mountinfo).compactMap { m in
            if m.fsType == "cgroup2" { return Hierarchy(mountpoint: m.mountPoint, options: "", version: 2) }
            guard m.fsType == "cgroup", !m.superOptions.isEmpty else { return nil }
            let opts = m.superOptions.split(separator: ",").filter { known.contains($0) || $0.hasPrefix("name=") }
            return Hierarchy(mountpoint: m.mountPoint, options: opts.joined(separator: ","), version: 1)
        }
    }

    /// This process's cgroup path in `h`, from /proc/self/cgroup text.
    public static func ownPath(_ h: Hierarchy, procCgroup: String) -> String {
        for line in procCgroup.split(separator: "\n") {
            let f = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard f.count == 3 else { continue }
            if h.version == 2 && f[0] == "0" && f[1].isEmpty { return String(f[2]) }
            if h.version == 1 && !f[1].isEmpty && Set(f[1].split(separator: ",")) == Set(h.options.split(separator: ",")) {
                return String(f[2])
            }
        }
        return "/"
    }

    /// The container's directory in each hierarchy. Absolute cgroupsPath are taken from the
    /// hierarchy root; relative ones (and the default, the id) from this process's own cgroup.
    public static func directories(cgroupsPath: String?, id: String, hierarchies: [Hierarchy], procCgroup: String) -> [(Hierarchy, String)] {
        let path = (cgroupsPath?.isEmpty ?? true) ? id : cgroupsPath!
        return hierarchies.map { h in
            let rel = path.hasPrefix("/") ? path : ownPath(h, procCgroup: procCgroup) + "/" + path
            return (h, LaunchPlan.clean(h.mountpoint + "/" + rel))
        }
    }

    /// Creates the directories; returns those it created (to be removed on delete), parents first.
    public static func create(_ dirs: [(Hierarchy, String)]) throws(SystemError) -> [String] {
        var created: [String] = []
        for (h, dir) in dirs {
            var missing: [String] = []
            var p = dir
            while !Files.exists(p) && p.count > h.mountpoint.count {
                missing.insert(p, at: 0)
                p = String(p[..<(p.lastIndex(of: "/") ?? p.startIndex)])
            }
            for m in missing {
                if mkdir(m, 0o755) != 0 && errno != EEXIST {
                    let e = SystemError.last("create cgroup \(m)")
                    remove(created)
                    throw e
                }
                created.append(m)
                if h.options.split(separator: ",").contains("cpuset") { inheritCpuset(m) }
            }
        }
        return created
    }

    /// A new v1 cpuset cgroup starts empty; copy the parent's cpus and mems so tasks can join.
    static func inheritCpuset(_ dir: String) {
        let parent = String(dir[..<(dir.lastIndex(of: "/") ?? dir.startIndex)])
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if let v = try? Files.readString(parent + "/" + file), !v.isEmpty {
                try? Files.write(dir + "/" + file, v)
            }
        }
    }

    public static func add(pid: Int32, to dirs: [String]) throws(SystemError) {
        for dir in dirs { try Files.write(dir + "/cgroup.procs", "\(pid)") }
    }

    /// Removes directories created by `create`, deepest first, retrying while dying tasks leave.
    public static func remove(_ created: [String]) {
        for dir in created.sorted(by: { $0.count > $1.count }) {
            var tries = 0
            while rmdir(dir) != 0 && errno == EBUSY && tries < 200 {
                tries += 1
                var ts = timespec(tv_sec: 0, tv_nsec: 5_000_000); nanosleep(&ts, nil)
            }
        }
    }

    /// Pids in the container's cgroup (first hierarchy that lists any).
    public static func pids(_ dirs: [String]) -> [Int32] {
        for dir in dirs {
            if let text = try? Files.readString(dir + "/cgroup.procs") {
                let pids = text.split(separator: "\n").compactMap { Int32($0) }
                if !pids.isEmpty { return pids }
            }
        }
        return []
    }
}
