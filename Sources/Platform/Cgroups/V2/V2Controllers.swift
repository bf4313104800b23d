import BrigOCI
import Glibc

/// cgroup v2 controllers (runc libcontainer/cgroups/fs2), with runc's v1 → v2 conversions.
/// All take the container's single cgroup2 directory.
public enum V2Controllers {
    /// Fails, naming the field, for spec fields cgroup v2 cannot express. Called before any write.
    public static func checkSupported(_ r: Resources) throws {
        if let s = r.memory?.swappiness {
            throw CgroupError.unsupported(field: field("memory.swappiness"),
                                          reason: "not supported on cgroup v2 (got \(s)); leave it unset")
        }
        if let c = r.cpu, (c.realtimeRuntime ?? 0) != 0 || (c.realtimePeriod ?? 0) != 0 {
            let name = (c.realtimeRuntime ?? 0) != 0 ? "cpu.realtimeRuntime" : "cpu.realtimePeriod"
            throw CgroupError.unsupported(field: field(name), reason: "realtime scheduling limits are not supported on cgroup v2")
        }
        if let n = r.network {
            if n.classID != nil {
                throw CgroupError.unsupported(field: field("network.classID"), reason: "net_cls is not available on cgroup v2")
            }
            if !(n.priorities ?? []).isEmpty {
                throw CgroupError.unsupported(field: field("network.priorities"), reason: "net_prio is not available on cgroup v2")
            }
        }
    }

    /// The controllers `r` writes files of, each with the spec field that asks for it, in the
    /// order `V2Manager.set` writes them (a field that writes nothing needs nothing).
    public static func required(_ r: Resources) -> [(field: String, controller: String)] {
        var out: [(field: String, controller: String)] = []
        func need(_ name: String, _ controller: String) { out.append((field(name), controller)) }
        if r.pids != nil { need("pids", "pids") }
        if let m = r.memory, [m.limit, m.swap, m.reservation].contains(where: { ($0 ?? 0) != 0 }) { need("memory", "memory") }
        if let b = r.blockIO, (b.weight ?? 0) != 0 || !(b.weightDevice ?? []).filter({ $0.weight != nil }).isEmpty || !ioMaxLines(b).isEmpty {
            need("blockIO", "io")
        }
        if let c = r.cpu {
            if (c.shares ?? 0) != 0 || c.idle != nil || c.burst != nil || (c.quota ?? 0) != 0 || (c.period ?? 0) != 0 { need("cpu", "cpu") }
            if !(c.cpus ?? "").isEmpty { need("cpu.cpus", "cpuset") } else if !(c.mems ?? "").isEmpty { need("cpu.mems", "cpuset") }
        }
        if !(r.hugepageLimits ?? []).isEmpty { need("hugepageLimits", "hugetlb") }
        if !(r.rdma ?? [:]).isEmpty { need("rdma", "rdma") }
        for key in (r.unified ?? [:]).keys.sorted() where !key.contains("/") {
            let controller = String(key.prefix { $0 != "." })
            if controller != key && controller != "cgroup" && !controller.isEmpty {
                out.append((field("unified") + "[\(key.debugDescription)]", controller))
            }
        }
        return out
    }

    /// memory.swap.max (converted from memory+swap), memory.max, memory.low. disableOOMKiller,
    /// kernel and kernelTCP are ignored as runc does.
    public static func applyMemory(_ m: Resources.Memory, _ dir: CgroupDirectory) throws {
        try checkMemoryUsage(m, dir, usageFile: "memory.current")
        let limit = m.limit ?? 0, swapSpec = m.swap ?? 0
        if limit != 0 || swapSpec != 0 {
            let swap = try swapMaxV2(swap: swapSpec, memory: limit)
            var swapValue = v2Number(swap)
            if swapValue == nil && swapSpec > 0 { swapValue = "0" }  // swap == memory: no swap
            if let swapValue {
                do {
                    try dir.write("memory.swap.max", swapValue, field: field("memory.swap"))
                } catch let e as CgroupError where e.errno == ENOENT && (swapValue == "max" || swapValue == "0") {
                    // No swap accounting: unlimited or disabled swap is already the case.
                }
            }
            if let v = v2Number(limit) { try dir.write("memory.max", v, field: field("memory.limit")) }
        }
        if let r = m.reservation, let v = v2Number(r) {
            try dir.write("memory.low", v, field: field("memory.reservation"))
        }
    }

    /// cpu.weight (from shares), cpu.idle, cpu.max (`QUOTA|max [PERIOD]`), cpu.max.burst.
    public static func applyCPU(_ c: Resources.CPU, _ dir: CgroupDirectory) throws {
        let weight = cpuWeight(fromShares: c.shares ?? 0)
        if weight != 0 { try dir.write("cpu.weight", String(weight), field: field("cpu.shares")) }
        if let idle = c.idle { try dir.write("cpu.idle", String(idle), field: field("cpu.idle")) }
        let quota = c.quota ?? 0, period = c.period ?? 0
        let burst = try V1CPU.writeRetryingAfterQuota("cpu.max.burst", c.burst.map { String($0) },
                                                      field("cpu.burst"), quota: quota, dir)
        if quota != 0 || period != 0 {
            var value = quota > 0 ? String(quota) : "max"
            if period != 0 { value += " \(period)" }
            try dir.write("cpu.max", value, field: field(quota != 0 ? "cpu.quota" : "cpu.period"))
            if let burst { try dir.write("cpu.max.burst", burst, field: field("cpu.burst")) }
        }
    }

    /// cpuset.cpus / cpuset.mems.
    public static func applyCpuset(_ c: Resources.CPU, _ dir: CgroupDirectory) throws {
        try V1CPU.applyCpuset(c, dir)
    }

    /// pids.max.
    public static func applyPids(_ p: Resources.Pids, _ dir: CgroupDirectory) throws {
        try V1Controllers.applyPids(p, dir)
    }

    /// io.bfq.weight when BFQ is available (weight as is, plus per-device weights), else io.weight
    /// converted from the v1 range; io.max one line per device `MAJ:MIN rbps=… wbps=… riops=… wiops=…`.
    public static func applyIO(_ b: Resources.BlockIO, _ dir: CgroupDirectory) throws {
        let bfq = dir.exists("io.bfq.weight")
        if let w = b.weight, w != 0 {
            if bfq {
                try dir.write("io.bfq.weight", String(w), field: field("blockIO.weight"))
            } else {
                try dir.write("io.weight", String(ioWeight(fromBlkioWeight: w)), field: field("blockIO.weight"))
            }
        }
        for wd in b.weightDevice ?? [] {
            guard let w = wd.weight else { continue }
            guard bfq else {
                throw CgroupError.unsupported(field: field("blockIO.weightDevice"),
                                              reason: "per-device weights need the BFQ I/O scheduler (io.bfq.weight) on cgroup v2")
            }
            try dir.write("io.bfq.weight", "\(wd.major):\(wd.minor) \(w)", field: field("blockIO.weightDevice"))
        }
        for line in ioMaxLines(b) { try dir.write("io.max", line, field: field("blockIO")) }
    }

    /// Groups the four throttle lists by device: `MAJ:MIN rbps=… wbps=… riops=… wiops=…`.
    static func ioMaxLines(_ b: Resources.BlockIO) -> [String] {
        var order: [String] = []
        var parts: [String: [String]] = [:]
        for (key, list) in [("rbps", b.throttleReadBpsDevice), ("wbps", b.throttleWriteBpsDevice),
                            ("riops", b.throttleReadIOPSDevice), ("wiops", b.throttleWriteIOPSDevice)] {
            for t in list ?? [] {
                let dev = "\(t.major):\(t.minor)"
                if parts[dev] == nil { order.append(dev) }
                parts[dev, default: []].append("\(key)=\(t.rate)")
            }
        }
        return order.map { ([$0] + parts[$0]!).joined(separator: " ") }
    }

    /// hugetlb.<size>.max (and .rsvd.max when present).
    public static func applyHugetlb(_ limits: [Resources.HugepageLimit], _ dir: CgroupDirectory) throws {
        try applyHugetlbLimits(limits, dir, limitFile: "max")
    }

    /// rdma.max.
    public static func applyRdma(_ r: [String: Resources.RdmaLimit], _ dir: CgroupDirectory) throws {
        try V1Controllers.applyRdma(r, dir)
    }

    /// `linux.resources.unified`: each key is a file name in the cgroup (sorted, applied last).
    /// Keys with `/` or `..` are refused; a missing file names the unavailable controller.
    public static func applyUnified(_ u: [String: String], _ dir: CgroupDirectory) throws {
        for (key, value) in u.sorted(by: { $0.key < $1.key }) {
            let name = field("unified") + "[\(key.debugDescription)]"
            guard !key.isEmpty, !key.contains("/"), !key.contains(subsequence: ".."), key.contains(".") else {
                throw CgroupError.invalidValue(field: name, value: key, reason: "must be a file name CONTROLLER.PARAMETER")
            }
            do {
                try dir.write(key, value, field: name)
            } catch let e as CgroupError where e.errno == ENOENT || e.errno == EPERM || e.errno == EACCES {
                let controller = String(key.prefix { $0 != "." })
                let available = ((try? dir.read("cgroup.controllers")) ?? "").split(separator: " ").map(String.init)
                if controller != "cgroup" && !available.contains(controller) {
                    throw CgroupError.unsupported(field: name, reason: "controller \(controller.debugDescription) is not available in \(dir.path)")
                }
                throw e
            }
        }
    }
}
