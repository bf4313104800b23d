import BrigOCI
import Glibc

/// Reads v1 statistics (runc fs GetStats) from the per-controller directories.
enum V1Stats {
    static func read(_ directory: (String) -> CgroupDirectory?) throws -> CgroupStats {
        var s = CgroupStats()
        if let d = directory("memory"), d.isPresent { try memory(d, &s.memory) }
        if let d = directory("cpuacct"), d.isPresent { try cpuacct(d, &s.cpu.usage) }
        if let d = directory("cpu"), d.isPresent, d.exists("cpu.stat") {
            let st = try d.readKeyValues("cpu.stat")
            s.cpu.throttling.periods = st["nr_periods"] ?? 0
            s.cpu.throttling.throttledPeriods = st["nr_throttled"] ?? 0
            s.cpu.throttling.throttledTime = st["throttled_time"] ?? 0
        }
        if let d = directory("pids"), d.isPresent { try pids(d, &s.pids) }
        if let d = directory("blkio"), d.isPresent { try blkio(d, &s.blkio) }
        if let d = directory("hugetlb"), d.isPresent {
            for size in hugePageSizes(d, suffix: "limit_in_bytes") {
                var h = HugetlbStats()
                h.usage = try d.readUInt("hugetlb.\(size).usage_in_bytes")
                h.max = try d.readUInt("hugetlb.\(size).max_usage_in_bytes")
                h.failcnt = try d.readUInt("hugetlb.\(size).failcnt")
                s.hugetlb[size] = h
            }
        }
        return s
    }

    static func memory(_ d: CgroupDirectory, _ m: inout MemoryStats) throws {
        if d.exists("memory.stat") {
            m.raw = try d.readKeyValues("memory.stat")
            m.cache = m.raw["cache"] ?? 0
        }
        m.usage = try entry(d, "memory.")
        if d.exists("memory.memsw.usage_in_bytes") { m.swap = try entry(d, "memory.memsw.") }
        if d.exists("memory.kmem.usage_in_bytes") { m.kernel = try entry(d, "memory.kmem.") }
        if d.exists("memory.kmem.tcp.usage_in_bytes") { m.kernelTCP = try entry(d, "memory.kmem.tcp.") }
    }

    static func entry(_ d: CgroupDirectory, _ prefix: String) throws -> MemoryEntry {
        var e = MemoryEntry()
        e.usage = try d.readUInt(prefix + "usage_in_bytes")
        e.max = try d.readUIntIfPresent(prefix + "max_usage_in_bytes") ?? 0
        e.failcnt = try d.readUIntIfPresent(prefix + "failcnt") ?? 0
        e.limit = try d.readUIntIfPresent(prefix + "limit_in_bytes") ?? 0
        return e
    }

    /// cpuacct.usage (ns), usage_percpu, and cpuacct.stat user/system (USER_HZ ticks → ns).
    static func cpuacct(_ d: CgroupDirectory, _ u: inout CPUUsage) throws {
        u.total = try d.readUIntIfPresent("cpuacct.usage") ?? 0
        func list(_ file: String) throws -> [UInt64] {
            d.exists(file) ? try d.read(file).split(separator: " ").compactMap { UInt64($0.trimmingWhitespace) } : []
        }
        u.percpu = try list("cpuacct.usage_percpu")
        u.percpuKernel = try list("cpuacct.usage_percpu_sys")
        u.percpuUser = try list("cpuacct.usage_percpu_user")
        if d.exists("cpuacct.stat") {
            let st = try d.readKeyValues("cpuacct.stat")
            let hz = UInt64(max(sysconf(Int32(_SC_CLK_TCK)), 1))
            u.user = (st["user"] ?? 0) * 1_000_000_000 / hz
            u.kernel = (st["system"] ?? 0) * 1_000_000_000 / hz
        }
    }

    static func pids(_ d: CgroupDirectory, _ p: inout PidsStats) throws {
        p.current = try d.readUIntIfPresent("pids.current") ?? 0
        let limit = try d.readUIntIfPresent("pids.max") ?? 0
        p.limit = limit == UInt64.max ? 0 : limit
    }

    /// CFQ statistics when present, else BFQ, else the throttle ones (runc's order).
    static func blkio(_ d: CgroupDirectory, _ b: inout BlkioStats) throws {
        for prefix in ["blkio.", "blkio.bfq.", "blkio.throttle."] where d.exists(prefix + "io_service_bytes_recursive") {
            b.ioServiceBytesRecursive = parseBlkioEntries(try d.read(prefix + "io_service_bytes_recursive"))
            b.ioServicedRecursive = parseBlkioEntries(try d.read(prefix + "io_serviced_recursive"))
            return
        }
    }
}
