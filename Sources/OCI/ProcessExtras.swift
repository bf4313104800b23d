// Pure translations of the remaining process/linux fields into the values their syscalls take:
// personality(2), sched_setattr(2), ioprio_set(2), set_mempolicy(2), sched_setaffinity(2).
// Each error names the field.

public enum ProcessExtras {
    public static let personalityDomains: [String: UInt] = ["LINUX": 0x0000, "LINUX32": 0x0008]
    public static let personalityFlags: [String: UInt] = [
        "UNAME26": 0x0020000, "ADDR_NO_RANDOMIZE": 0x0040000, "FDPIC_FUNCPTRS": 0x0080000,
        "MMAP_PAGE_ZERO": 0x0100000, "ADDR_COMPAT_LAYOUT": 0x0200000, "READ_IMPLIES_EXEC": 0x0400000,
        "ADDR_LIMIT_32BIT": 0x0800000, "SHORT_INODE": 0x1000000, "WHOLE_SECONDS": 0x2000000,
        "STICKY_TIMEOUTS": 0x4000000, "ADDR_LIMIT_3GB": 0x8000000,
    ]

    public static func personality(_ p: Personality) throws(ConfigError) -> UInt {
        guard var v = personalityDomains[p.domain] else {
            throw ConfigError("linux.personality.domain", "unknown domain \"\(p.domain)\" (LINUX or LINUX32)")
        }
        for (i, f) in (p.flags ?? []).enumerated() {
            guard let bit = personalityFlags[f] else { throw ConfigError("linux.personality.flags[\(i)]", "unknown flag \"\(f)\"") }
            v |= bit
        }
        return v
    }

    public struct SchedAttr: Codable, Sendable, Equatable {
        public var policy: UInt32
        public var flags: UInt64
        public var nice: Int32
        public var priority: UInt32
        public var runtime: UInt64
        public var deadline: UInt64
        public var period: UInt64
        public init(policy: UInt32, flags: UInt64, nice: Int32, priority: UInt32, runtime: UInt64, deadline: UInt64, period: UInt64) {
            self.policy = policy; self.flags = flags; self.nice = nice; self.priority = priority
            self.runtime = runtime; self.deadline = deadline; self.period = period
        }
    }

    public static let schedPolicies: [String: UInt32] = [
        "SCHED_OTHER": 0, "SCHED_FIFO": 1, "SCHED_RR": 2, "SCHED_BATCH": 3, "SCHED_ISO": 4,
        "SCHED_IDLE": 5, "SCHED_DEADLINE": 6,
    ]
    public static let schedFlags: [String: UInt64] = [
        "SCHED_FLAG_RESET_ON_FORK": 0x01, "SCHED_FLAG_RECLAIM": 0x02, "SCHED_FLAG_DL_OVERRUN": 0x04,
        "SCHED_FLAG_KEEP_POLICY": 0x08, "SCHED_FLAG_KEEP_PARAMS": 0x10, "SCHED_FLAG_UTIL_CLAMP_MIN": 0x20,
        "SCHED_FLAG_UTIL_CLAMP_MAX": 0x40,
    ]

    public static func scheduler(_ s: Scheduler) throws(ConfigError) -> SchedAttr {
        let f = "process.scheduler"
        guard let policy = schedPolicies[s.policy] else { throw ConfigError("\(f).policy", "unknown policy \"\(s.policy)\"") }
        var flags: UInt64 = 0
        for (i, name) in (s.flags ?? []).enumerated() {
            guard let b = schedFlags[name] else { throw ConfigError("\(f).flags[\(i)]", "unknown flag \"\(name)\"") }
            flags |= b
        }
        let nice = s.nice ?? 0
        if nice < -20 || nice > 19 { throw ConfigError("\(f).nice", "must be between -20 and 19, got \(nice)") }
        let prio = s.priority ?? 0
        let realtime = policy == 1 || policy == 2
        if realtime && (prio < 1 || prio > 99) { throw ConfigError("\(f).priority", "must be 1..99 for \(s.policy), got \(prio)") }
        if !realtime && prio != 0 { throw ConfigError("\(f).priority", "must be 0 for \(s.policy), got \(prio)") }
        if policy == 6 && (s.runtime == nil || s.deadline == nil) {
            throw ConfigError(f, "SCHED_DEADLINE needs runtime and deadline")
        }
        return SchedAttr(policy: policy, flags: flags, nice: nice, priority: UInt32(prio), runtime: s.runtime ?? 0,
                         deadline: s.deadline ?? 0, period: s.period ?? 0)
    }

    public static let ioClasses: [String: Int32] = ["IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3]

    public static func ioPriority(_ p: IOPriority) throws(ConfigError) -> Int32 {
        guard let c = ioClasses[p.class] else { throw ConfigError("process.ioPriority.class", "unknown class \"\(p.class)\"") }
        let prio = p.priority ?? 0
        if prio < 0 || prio > 7 { throw ConfigError("process.ioPriority.priority", "must be 0..7, got \(prio)") }
        return (c << 13) | prio
    }

    public struct MemPolicy: Codable, Sendable, Equatable {
        public var mode: Int32
        public var mask: [UInt64]
        public var maxnode: UInt
        public init(mode: Int32, mask: [UInt64], maxnode: UInt) { self.mode = mode; self.mask = mask; self.maxnode = maxnode }
    }

    public static let memPolicyModes: [String: Int32] = [
        "MPOL_DEFAULT": 0, "MPOL_PREFERRED": 1, "MPOL_BIND": 2, "MPOL_INTERLEAVE": 3, "MPOL_LOCAL": 4,
        "MPOL_PREFERRED_MANY": 5, "MPOL_WEIGHTED_INTERLEAVE": 6,
    ]
    public static let memPolicyFlags: [String: Int32] = [
        "MPOL_F_NUMA_BALANCING": 1 << 13, "MPOL_F_RELATIVE_NODES": 1 << 14, "MPOL_F_STATIC_NODES": 1 << 15,
    ]

    public static func memoryPolicy(_ m: MemoryPolicy) throws(ConfigError) -> MemPolicy {
        let f = "linux.memoryPolicy"
        guard var mode = memPolicyModes[m.mode] else { throw ConfigError("\(f).mode", "unknown mode \"\(m.mode)\"") }
        for (i, name) in (m.flags ?? []).enumerated() {
            guard let b = memPolicyFlags[name] else { throw ConfigError("\(f).flags[\(i)]", "unknown flag \"\(name)\"") }
            mode |= b
        }
        let nodes = m.nodes ?? ""
        let mask = try cpuMask(nodes, field: "\(f).nodes")
        let base = mode & 0xff
        if (base == 0 || base == 4) && !nodes.isEmpty { throw ConfigError("\(f).nodes", "must be empty for \(m.mode)") }
        if (base == 2 || base == 3 || base == 5 || base == 6) && nodes.isEmpty { throw ConfigError("\(f).nodes", "required for \(m.mode)") }
        return MemPolicy(mode: mode, mask: mask, maxnode: UInt(mask.count * 64 + 1))
    }

    /// Parses a list like "0-3,5,7" into a bitmask of 64-bit words.
    public static func cpuMask(_ list: String, field: String) throws(ConfigError) -> [UInt64] {
        var words: [UInt64] = []
        for part in list.split(separator: ",") where !part.isEmpty {
            let ends = part.split(separator: "-", omittingEmptySubsequences: false)
            guard (1...2).contains(ends.count), let lo = Int(ends[0]), let hi = Int(ends.last!), lo >= 0, hi >= lo, hi < 4096 else {
                throw ConfigError(field, "invalid list \"\(list)\"")
            }
            for n in lo...hi {
                while words.count <= n / 64 { words.append(0) }
                words[n / 64] |= 1 << UInt64(n % 64)
            }
        }
        return words
    }
}
