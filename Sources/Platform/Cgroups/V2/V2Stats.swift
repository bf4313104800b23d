import BrigOCI

/// Reads cgroup v2 statistics (runc fs2 GetStats) into the runc stats shape.
enum V2Stats {
    static func read(_ d: CgroupDirectory) throws -> CgroupStats {
        var s = CgroupStats()
        if d.exists("memory.stat") { try memory(d, &s.memory) }
        if d.exists("cpu.stat") {
            let st = try d.readKeyValues("cpu.stat")
            s.cpu.usage.total = (st["usage_usec"] ?? 0) * 1000
            s.cpu.usage.user = (st["user_usec"] ?? 0) * 1000
            s.cpu.usage.kernel = (st["system_usec"] ?? 0) * 1000
            s.cpu.throttling.periods = st["nr_periods"] ?? 0
            s.cpu.throttling.throttledPeriods = st["nr_throttled"] ?? 0
            s.cpu.throttling.throttledTime = (st["throttled_usec"] ?? 0) * 1000
        }
        if d.exists("pids.current") {
            s.pids.current = try d.readUInt("pids.current")
            let limit = try d.readUIntIfPresent("pids.max") ?? 0
            s.pids.limit = limit == UInt64.max ? 0 : limit
        }
        if d.exists("io.stat") {
            let io = parseIOStat(try d.read("io.stat"))
            s.blkio.ioServiceBytesRecursive = io.bytes
            s.blkio.ioServicedRecursive = io.ios
        }
        for size in hugePageSizes(d, suffix: "max") {
            var h = HugetlbStats()
            h.usage = try d.readUIntIfPresent("hugetlb.\(size).current") ?? 0
            // cgroup v2 keeps no peak; `max` stays 0 as in runc.
            if d.exists("hugetlb.\(size).events") {
                h.failcnt = try d.readKeyValues("hugetlb.\(size).events")["max"] ?? 0
            }
            s.hugetlb[size] = h
        }
        return s
    }

    /// memory.stat (cache = `file`), memory.current/max/peak, failcnt = memory.events `max`;
    /// swap reported as memory+swap like v1 memsw (runc's convention).
    static func memory(_ d: CgroupDirectory, _ m: inout MemoryStats) throws {
        m.raw = try d.readKeyValues("memory.stat")
        m.cache = m.raw["file"] ?? 0
        m.usage.usage = try d.readUIntIfPresent("memory.current") ?? 0
        m.usage.limit = try d.readUIntIfPresent("memory.max") ?? UInt64.max
        m.usage.max = try d.readUIntIfPresent("memory.peak") ?? 0
        if d.exists("memory.events") { m.usage.failcnt = try d.readKeyValues("memory.events")["max"] ?? 0 }
        if d.exists("memory.swap.current") {
            m.swap.usage = try d.readUInt("memory.swap.current") + m.usage.usage
            let swapMax = try d.readUIntIfPresent("memory.swap.max") ?? UInt64.max
            m.swap.limit = swapMax == UInt64.max || m.usage.limit == UInt64.max ? UInt64.max : swapMax + m.usage.limit
            if d.exists("memory.swap.events") { m.swap.failcnt = try d.readKeyValues("memory.swap.events")["fail"] ?? 0 }
        }
    }
}
