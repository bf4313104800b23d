import BrigOCI

// runc's cgroup v1 → v2 value conversions (libcontainer/cgroups/utils.go), and field names.

/// The spec path of a resources field, e.g. `field("memory.swappiness")` →
/// `linux.resources.memory.swappiness`.
func field(_ name: String) -> String { "linux.resources." + name }

/// cpu.shares (2..262144) → cpu.weight (1..10000): `1 + ((shares-2)*9999)/262142`; 0 means unset.
public func cpuWeight(fromShares shares: UInt64) -> UInt64 {
    if shares == 0 { return 0 }
    let s = min(max(shares, 2), 262_144)
    return 1 + ((s - 2) * 9999) / 262_142
}

/// blkio.weight (10..1000) → io.weight (1..10000): `1 + (w-10)*9999/990`; 0 means unset.
public func ioWeight(fromBlkioWeight weight: UInt16) -> UInt64 {
    if weight == 0 { return 0 }
    let w = UInt64(min(max(weight, 10), 1000))
    return 1 + (w - 10) * 9999 / 990
}

/// The spec's `memory.swap` (memory+swap, v1 semantics) → cgroup v2 memory.swap.max
/// (swap only), as runc's ConvertMemorySwapToCgroupV2Value: 0 = unset, -1 = max.
public func swapMaxV2(swap: Int64, memory: Int64) throws -> Int64 {
    if memory == -1 && swap == 0 { return -1 }
    if swap == -1 || swap == 0 { return swap }
    if memory == 0 || memory == -1 {
        throw CgroupError.invalidValue(field: field("memory.swap"), value: String(swap),
                                       reason: "unable to set swap limit without memory limit")
    }
    if memory < 0 {
        throw CgroupError.invalidValue(field: field("memory.limit"), value: String(memory), reason: "negative memory limit")
    }
    if swap < memory {
        throw CgroupError.invalidValue(field: field("memory.swap"), value: String(swap),
                                       reason: "memory+swap limit should be >= memory limit \(memory)")
    }
    return swap - memory
}

/// cgroup v2 number formatting (runc numToStr): 0 → nil (unset), -1 → `max`.
func v2Number(_ value: Int64) -> String? {
    switch value {
    case 0: return nil
    case -1: return "max"
    default: return String(value)
    }
}

/// pids.max: ≤ 0 means unlimited.
func pidsMax(_ limit: Int64) -> String { limit > 0 ? String(limit) : "max" }

/// `rdma.max` line: `<device> hca_handle=N hca_object=M`.
func rdmaLine(_ device: String, _ l: Resources.RdmaLimit) -> String {
    var s = device
    if let h = l.hcaHandles { s += " hca_handle=\(h)" }
    if let o = l.hcaObjects { s += " hca_object=\(o)" }
    return s
}

/// Writes `hugetlb.<size>.<limitFile>` (v1 `limit_in_bytes`, v2 `max`) per page size, and the
/// `hugetlb.<size>.rsvd.<limitFile>` reservation limit when the kernel has it (as runc).
/// Page sizes such as `2MB` become part of a file name, so they are validated.
func applyHugetlbLimits(_ limits: [Resources.HugepageLimit], _ dir: CgroupDirectory, limitFile: String) throws {
    for l in limits {
        guard !l.pageSize.isEmpty, l.pageSize.allSatisfy({ $0.isLetter || $0.isNumber }) else {
            throw CgroupError.invalidValue(field: field("hugepageLimits.pageSize"), value: l.pageSize, reason: "not a page size")
        }
        try dir.write("hugetlb.\(l.pageSize).\(limitFile)", String(l.limit), field: field("hugepageLimits"))
        let rsvd = "hugetlb.\(l.pageSize).rsvd.\(limitFile)"
        if dir.exists(rsvd) { try dir.write(rsvd, String(l.limit), field: field("hugepageLimits")) }
    }
}

/// checkBeforeUpdate: refuse a limit at or below current usage (runc's CheckMemoryUsage).
func checkMemoryUsage(_ m: Resources.Memory, _ dir: CgroupDirectory, usageFile: String) throws {
    guard m.checkBeforeUpdate == true, let limit = m.limit, limit > 0,
          let usage = try? dir.readUInt(usageFile) else { return }
    if usage >= UInt64(limit) {
        throw CgroupError.limitBelowUsage(field: field("memory.limit"), limit: limit, usage: usage)
    }
}
