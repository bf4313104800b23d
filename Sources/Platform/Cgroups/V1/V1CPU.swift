import BrigOCI
import Glibc

/// cgroup v1 cpu and cpuset controllers (runc fs/cpu.go, fs/cpuset.go).
public enum V1CPU {
    /// Writes the cpu-controller part of `linux.resources.cpu` (shares, CFS quota/period/burst,
    /// idle, realtime runtime/period) into a v1 cpu cgroup directory.
    public static func apply(_ c: Resources.CPU, _ dir: CgroupDirectory) throws {
        if let p = c.realtimePeriod, p != 0 {
            try dir.write("cpu.rt_period_us", String(p), field: field("cpu.realtimePeriod"))
        }
        if let r = c.realtimeRuntime, r != 0 {
            try dir.write("cpu.rt_runtime_us", String(r), field: field("cpu.realtimeRuntime"))
        }
        if let shares = c.shares, shares != 0 {
            try dir.write("cpu.shares", String(shares), field: field("cpu.shares"))
            let actual = try dir.readUInt("cpu.shares")
            if actual != shares {
                let bound = shares > actual ? "maximum" : "minimum"
                throw CgroupError.invalidValue(field: field("cpu.shares"), value: String(shares),
                                               reason: "the \(bound) allowed cpu-shares is \(actual)")
            }
        }
        let quota = c.quota ?? 0
        // The kernel may reject a smaller period (EINVAL: old quota/new period exceeds the
        // parent's) or a larger burst; when a quota follows, retry them after it.
        let period = try writeRetryingAfterQuota("cpu.cfs_period_us", c.period.flatMap { $0 == 0 ? nil : String($0) },
                                                 field("cpu.period"), quota: quota, dir)
        let burst = try writeRetryingAfterQuota("cpu.cfs_burst_us", c.burst.map { String($0) },
                                                field("cpu.burst"), quota: quota, dir)
        if quota != 0 {
            try dir.write("cpu.cfs_quota_us", String(quota), field: field("cpu.quota"))
            if let period { try dir.write("cpu.cfs_period_us", period, field: field("cpu.period")) }
            if let burst { try dir.write("cpu.cfs_burst_us", burst, field: field("cpu.burst")) }
        }
        if let idle = c.idle {
            try dir.write("cpu.idle", String(idle), field: field("cpu.idle"))
        }
    }

    /// Writes `value`; on EINVAL with a quota still to come returns it for a retry.
    static func writeRetryingAfterQuota(_ file: String, _ value: String?, _ fieldName: String, quota: Int64,
                                        _ dir: CgroupDirectory) throws -> String? {
        guard let value else { return nil }
        do {
            try dir.write(file, value, field: fieldName)
            return nil
        } catch let e as CgroupError where e.errno == EINVAL && quota != 0 {
            return value
        }
    }

    /// Writes cpuset.cpus / cpuset.mems into a v1 cpuset cgroup directory.
    public static func applyCpuset(_ c: Resources.CPU, _ dir: CgroupDirectory) throws {
        if let cpus = c.cpus, !cpus.isEmpty { try dir.write("cpuset.cpus", cpus, field: field("cpu.cpus")) }
        if let mems = c.mems, !mems.isEmpty { try dir.write("cpuset.mems", mems, field: field("cpu.mems")) }
    }

    /// A new v1 cpuset cgroup starts with empty cpus/mems and refuses tasks: walk up from `leaf`
    /// to the first ancestor with cpus and mems set, then copy them down (runc's ensureParent).
    static func inheritCpuset(leaf: String) throws {
        var chain: [CgroupDirectory] = []
        var path = leaf
        while path.count > 1 {
            let dir = CgroupDirectory(path)
            guard dir.exists("cpuset.cpus"), dir.exists("cpuset.mems") else { break }
            let cpus = try dir.read("cpuset.cpus").trimmingWhitespace, mems = try dir.read("cpuset.mems").trimmingWhitespace
            if !cpus.isEmpty && !mems.isEmpty { break }
            chain.append(dir)
            path = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
        }
        for dir in chain.reversed() {
            let parent = CgroupDirectory(String(dir.path[..<dir.path.lastIndex(of: "/")!]))
            for file in ["cpuset.cpus", "cpuset.mems"] where try dir.read(file).trimmingWhitespace.isEmpty {
                try dir.write(file, try parent.read(file))
            }
        }
    }
}
