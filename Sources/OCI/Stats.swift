// Container resource statistics in the JSON shape of `runc events --stats` (runc
// types/events.go): zero numbers and empty lists are omitted as Go's `omitempty` does. Read
// from cgroups by BrigCgroups (v1/v2 stats), reported by `brig events` and by brig-agent.

/// `data` of a runc `stats` event.
public struct CgroupStats: Codable, Equatable, Sendable {
    public var cpu = CPUStats()
    public var memory = MemoryStats()
    public var pids = PidsStats()
    public var blkio = BlkioStats()
    /// By page size, e.g. `2MB`.
    public var hugetlb: [String: HugetlbStats] = [:]
    public init() {}

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(cpu, forKey: "cpu")
        try c.encode([String: String](), forKey: "cpuset")
        try c.encode(memory, forKey: "memory")
        try c.encode(pids, forKey: "pids")
        try c.encode(blkio, forKey: "blkio")
        try c.encode(hugetlb, forKey: "hugetlb")
        try c.encode([String: String](), forKey: "intel_rdt")
        try c.encodeNil(forKey: "network_interfaces")
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        cpu = try c.decodeIfPresent(CPUStats.self, forKey: "cpu") ?? .init()
        memory = try c.decodeIfPresent(MemoryStats.self, forKey: "memory") ?? .init()
        pids = try c.decodeIfPresent(PidsStats.self, forKey: "pids") ?? .init()
        blkio = try c.decodeIfPresent(BlkioStats.self, forKey: "blkio") ?? .init()
        hugetlb = try c.decodeIfPresent([String: HugetlbStats].self, forKey: "hugetlb") ?? [:]
    }
}

/// `cpu`: usage in nanoseconds and CFS throttling.
public struct CPUStats: Codable, Equatable, Sendable {
    public var usage = CPUUsage()
    public var throttling = Throttling()
    public init() {}
}

/// `cpu.usage`: nanoseconds, total and per CPU, kernel and user.
public struct CPUUsage: Codable, Equatable, Sendable {
    public var total: UInt64 = 0
    public var percpu: [UInt64] = []
    /// Per-CPU kernel / user time (v1 cpuacct.usage_percpu_sys / _user).
    public var percpuKernel: [UInt64] = []
    public var percpuUser: [UInt64] = []
    public var kernel: UInt64 = 0
    public var user: UInt64 = 0
    public init() {}

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        try c.encodeNonZero(total, "total")
        if !percpu.isEmpty { try c.encode(percpu, forKey: "percpu") }
        if !percpuKernel.isEmpty { try c.encode(percpuKernel, forKey: "percpu_kernel") }
        if !percpuUser.isEmpty { try c.encode(percpuUser, forKey: "percpu_user") }
        try c.encode(kernel, forKey: "kernel")
        try c.encode(user, forKey: "user")
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        total = try c.number("total"); kernel = try c.number("kernel"); user = try c.number("user")
        percpu = try c.decodeIfPresent([UInt64].self, forKey: "percpu") ?? []
        percpuKernel = try c.decodeIfPresent([UInt64].self, forKey: "percpu_kernel") ?? []
        percpuUser = try c.decodeIfPresent([UInt64].self, forKey: "percpu_user") ?? []
    }
}

/// `cpu.throttling`: CFS periods and throttling.
public struct Throttling: Codable, Equatable, Sendable, NumberFields {
    public var periods: UInt64 = 0
    public var throttledPeriods: UInt64 = 0
    /// Nanoseconds.
    public var throttledTime: UInt64 = 0
    public init() {}

    static var fields: [NumberField<Self>] {
        [.init("periods", \.periods), .init("throttledPeriods", \.throttledPeriods),
         .init("throttledTime", \.throttledTime)]
    }

    public func encode(to encoder: any Encoder) throws { try encodeNumbers(to: encoder) }
    public init(from decoder: any Decoder) throws { try self.init(numbersFrom: decoder) }
}

/// `memory`: page cache, usage/swap/kernel entries and the raw memory.stat map.
public struct MemoryStats: Codable, Equatable, Sendable {
    public var cache: UInt64 = 0
    public var usage = MemoryEntry()
    public var swap = MemoryEntry()
    public var kernel = MemoryEntry()
    public var kernelTCP = MemoryEntry()
    /// memory.stat as read.
    public var raw: [String: UInt64] = [:]
    public init() {}

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        try c.encodeNonZero(cache, "cache")
        try c.encode(usage, forKey: "usage")
        try c.encode(swap, forKey: "swap")
        try c.encode(kernel, forKey: "kernel")
        try c.encode(kernelTCP, forKey: "kernelTCP")
        if !raw.isEmpty { try c.encode(raw, forKey: "raw") }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        cache = try c.number("cache")
        usage = try c.decodeIfPresent(MemoryEntry.self, forKey: "usage") ?? .init()
        swap = try c.decodeIfPresent(MemoryEntry.self, forKey: "swap") ?? .init()
        kernel = try c.decodeIfPresent(MemoryEntry.self, forKey: "kernel") ?? .init()
        kernelTCP = try c.decodeIfPresent(MemoryEntry.self, forKey: "kernelTCP") ?? .init()
        raw = try c.decodeIfPresent([String: UInt64].self, forKey: "raw") ?? [:]
    }
}

/// One memory counter set (usage, swap = memory+swap, kernel, kernelTCP); bytes.
public struct MemoryEntry: Codable, Equatable, Sendable, NumberFields {
    /// `UInt64.max` when unlimited.
    public var limit: UInt64 = 0
    public var usage: UInt64 = 0
    public var max: UInt64 = 0
    public var failcnt: UInt64 = 0
    public init() {}

    static var fields: [NumberField<Self>] {
        [.init("limit", \.limit, omitZero: false), .init("usage", \.usage), .init("max", \.max),
         .init("failcnt", \.failcnt, omitZero: false)]
    }

    public func encode(to encoder: any Encoder) throws { try encodeNumbers(to: encoder) }
    public init(from decoder: any Decoder) throws { try self.init(numbersFrom: decoder) }
}

/// `pids`: current number of tasks and the limit.
public struct PidsStats: Codable, Equatable, Sendable, NumberFields {
    public var current: UInt64 = 0
    /// 0 when unlimited.
    public var limit: UInt64 = 0
    public init() {}

    static var fields: [NumberField<Self>] {
        [.init("current", \.current), .init("limit", \.limit)]
    }

    public func encode(to encoder: any Encoder) throws { try encodeNumbers(to: encoder) }
    public init(from decoder: any Decoder) throws { try self.init(numbersFrom: decoder) }
}

/// One block I/O counter: device, operation (`Read`, `Write`, …) and value.
public struct BlkioEntry: Codable, Equatable, Sendable {
    public var major: UInt64
    public var minor: UInt64
    public var op: String
    public var value: UInt64
    public init(major: UInt64, minor: UInt64, op: String, value: UInt64) {
        self.major = major; self.minor = minor; self.op = op; self.value = value
    }
}

/// `blkio`: bytes and operations per device (v1 blkio files, v2 io.stat).
public struct BlkioStats: Codable, Equatable, Sendable {
    public var ioServiceBytesRecursive: [BlkioEntry] = []
    public var ioServicedRecursive: [BlkioEntry] = []
    public init() {}

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        if !ioServiceBytesRecursive.isEmpty { try c.encode(ioServiceBytesRecursive, forKey: "ioServiceBytesRecursive") }
        if !ioServicedRecursive.isEmpty { try c.encode(ioServicedRecursive, forKey: "ioServicedRecursive") }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        ioServiceBytesRecursive = try c.decodeIfPresent([BlkioEntry].self, forKey: "ioServiceBytesRecursive") ?? []
        ioServicedRecursive = try c.decodeIfPresent([BlkioEntry].self, forKey: "ioServicedRecursive") ?? []
    }
}

/// `hugetlb[pageSize]`: usage, peak (v1 only), and allocation failures.
public struct HugetlbStats: Codable, Equatable, Sendable, NumberFields {
    public var usage: UInt64 = 0
    public var max: UInt64 = 0
    public var failcnt: UInt64 = 0
    public init() {}

    static var fields: [NumberField<Self>] {
        [.init("usage", \.usage), .init("max", \.max), .init("failcnt", \.failcnt, omitZero: false)]
    }

    public func encode(to encoder: any Encoder) throws { try encodeNumbers(to: encoder) }
    public init(from decoder: any Decoder) throws { try self.init(numbersFrom: decoder) }
}

/// A string coding key.
struct Key: CodingKey, ExpressibleByStringLiteral {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
    init(stringLiteral value: String) { stringValue = value }
}

/// One numeric field of a stats struct: JSON key, and whether 0 is omitted (Go `omitempty`).
struct NumberField<T> {
    var key: Key
    var path: WritableKeyPath<T, UInt64>
    var omitZero: Bool
    init(_ key: String, _ path: WritableKeyPath<T, UInt64>, omitZero: Bool = true) {
        self.key = Key(stringValue: key); self.path = path; self.omitZero = omitZero
    }
}

/// Stats structs made only of numbers share their JSON coding.
protocol NumberFields {
    init()
    static var fields: [NumberField<Self>] { get }
}

extension NumberFields {
    func encodeNumbers(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        for f in Self.fields where !(f.omitZero && self[keyPath: f.path] == 0) {
            try c.encode(self[keyPath: f.path], forKey: f.key)
        }
    }

    init(numbersFrom decoder: any Decoder) throws {
        self.init()
        let c = try decoder.container(keyedBy: Key.self)
        for f in Self.fields { self[keyPath: f.path] = try c.number(f.key) }
    }
}

extension KeyedEncodingContainer where K == Key {
    mutating func encodeNonZero(_ v: UInt64, _ key: Key) throws {
        if v != 0 { try encode(v, forKey: key) }
    }
}

extension KeyedDecodingContainer where K == Key {
    func number(_ key: Key) throws -> UInt64 { try decodeIfPresent(UInt64.self, forKey: key) ?? 0 }
}

