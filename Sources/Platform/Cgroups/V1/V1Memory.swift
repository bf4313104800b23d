import BrigOCI
import Glibc

/// cgroup v1 memory controller (runc libcontainer/cgroups/fs/memory.go).
public enum V1Memory {
    /// Writes `linux.resources.memory` into a v1 memory cgroup directory.
    public static func apply(_ m: Resources.Memory, _ dir: CgroupDirectory) throws {
        try checkMemoryUsage(m, dir, usageFile: "memory.usage_in_bytes")
        try setMemoryAndSwap(limit: m.limit ?? 0, swap: m.swap ?? 0, dir)
        if let tcp = m.kernelTCP, tcp != 0 {
            try dir.write("memory.kmem.tcp.limit_in_bytes", String(tcp), field: field("memory.kernelTCP"))
        }
        // memory.kernel is deprecated and ignored, as runc does.
        if let r = m.reservation, r != 0 {
            try dir.write("memory.soft_limit_in_bytes", String(r), field: field("memory.reservation"))
        }
        if m.disableOOMKiller == true {
            try dir.write("memory.oom_control", "1", field: field("memory.disableOOMKiller"))
        }
        if let s = m.swappiness {
            guard s <= 100 else {
                throw CgroupError.invalidValue(field: field("memory.swappiness"), value: String(s), reason: "valid range is 0-100")
            }
            try dir.write("memory.swappiness", String(s), field: field("memory.swappiness"))
        }
    }

    /// Sets memory.limit_in_bytes and memory.memsw.limit_in_bytes in the order the kernel
    /// accepts (memsw must stay ≥ limit): when raising (or unlimiting) swap past the current
    /// limit, memsw first; otherwise limit first.
    static func setMemoryAndSwap(limit: Int64, swap: Int64, _ dir: CgroupDirectory) throws {
        var swap = swap
        // Unlimited memory with swap unset also unlimits swap (if the kernel has swap accounting).
        if limit == -1 && swap == 0 && dir.exists("memory.memsw.limit_in_bytes") { swap = -1 }
        if limit != 0 && swap != 0 {
            let current = try dir.readUInt("memory.limit_in_bytes")
            if swap == -1 || current < UInt64(swap) {
                try setSwap(swap, dir)
                try setLimit(limit, dir)
                return
            }
        }
        try setLimit(limit, dir)
        try setSwap(swap, dir)
    }

    private static func setLimit(_ limit: Int64, _ dir: CgroupDirectory) throws {
        guard limit != 0 else { return }
        do {
            try dir.write("memory.limit_in_bytes", String(limit), field: field("memory.limit"))
        } catch let e as CgroupError where e.errno == EBUSY {
            // The kernel could not reclaim down to the new limit (runc reports usage the same way).
            let usage = (try? dir.readUInt("memory.usage_in_bytes")).map(String.init) ?? "?"
            let peak = (try? dir.readUInt("memory.max_usage_in_bytes")).map(String.init) ?? "?"
            throw CgroupError.invalidValue(field: field("memory.limit"), value: String(limit),
                                           reason: "\(dir.file("memory.limit_in_bytes")): EBUSY, cannot shrink below usage (current usage: \(usage), peak usage: \(peak))")
        }
    }

    private static func setSwap(_ swap: Int64, _ dir: CgroupDirectory) throws {
        guard swap != 0 else { return }
        try dir.write("memory.memsw.limit_in_bytes", String(swap), field: field("memory.swap"))
    }
}
