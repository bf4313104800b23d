import BrigOCI

/// A normalised device cgroup rule: type `a`/`c`/`b`, major/minor (nil = `*`), access bits.
public struct DeviceRule: Equatable, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Character, Sendable { case all = "a", char = "c", block = "b" }
    /// Access bits, as in the BPF context (BPF_DEVCG_ACC_*).
    public struct Access: OptionSet, Hashable, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let mknod = Access(rawValue: 1)
        public static let read = Access(rawValue: 2)
        public static let write = Access(rawValue: 4)
        public static let all: Access = [.read, .write, .mknod]

        /// Parses `rwm` letters.
        public init?(_ s: String) {
            var a: Access = []
            for c in s {
                switch c {
                case "r": a.insert(.read)
                case "w": a.insert(.write)
                case "m": a.insert(.mknod)
                default: return nil
                }
            }
            self = a
        }

        public var letters: String {
            (contains(.read) ? "r" : "") + (contains(.write) ? "w" : "") + (contains(.mknod) ? "m" : "")
        }
    }

    public var allow: Bool
    public var kind: Kind
    public var major: Int64?
    public var minor: Int64?
    public var access: Access

    public init(allow: Bool, _ kind: Kind, _ major: Int64?, _ minor: Int64?, _ access: Access = .all) {
        self.allow = allow; self.kind = kind; self.major = major; self.minor = minor; self.access = access
    }

    /// From a spec rule: type defaults to `a`, major/minor -1 or absent mean `*`, access `rwm`.
    public init(_ r: Resources.DeviceCgroupRule, index: Int) throws {
        let name = "linux.resources.devices[\(index)]"
        guard let kind = Kind(rawValue: Character(r.type ?? "a")), (r.type ?? "a").count == 1 else {
            throw CgroupError.invalidValue(field: name + ".type", value: r.type ?? "", reason: "must be a, b or c")
        }
        guard let access = Access(r.access ?? "rwm"), !access.isEmpty else {
            throw CgroupError.invalidValue(field: name + ".access", value: r.access ?? "", reason: "must be letters from rwm")
        }
        func number(_ v: Int64?, _ f: String) throws -> Int64? {
            guard let v, v != -1 else { return nil }
            guard v >= 0 && v <= Int64(UInt32.max) else {
                throw CgroupError.invalidValue(field: name + "." + f, value: String(v), reason: "out of range")
            }
            return v
        }
        self.init(allow: r.allow, kind, try number(r.major, "major"), try number(r.minor, "minor"), access)
    }

    /// The v1 devices.allow / devices.deny line: `c 1:3 rwm`, `a *:* rwm`.
    public var line: String {
        "\(kind.rawValue) \(major.map(String.init) ?? "*"):\(minor.map(String.init) ?? "*") \(access.letters)"
    }

    public var description: String { (allow ? "allow " : "deny ") + line }

    /// A rule that covers every device (`a` type): it resets the default.
    var isWildcard: Bool { kind == .all }

    /// runc's default allowlist (specconv.AllowedDevices), plus /dev/console 5:1.
    public static let defaultAllowed: [DeviceRule] = [
        DeviceRule(allow: true, .char, nil, nil, .mknod),
        DeviceRule(allow: true, .block, nil, nil, .mknod),
        DeviceRule(allow: true, .char, 1, 3),    // /dev/null
        DeviceRule(allow: true, .char, 1, 8),    // /dev/random
        DeviceRule(allow: true, .char, 1, 7),    // /dev/full
        DeviceRule(allow: true, .char, 5, 0),    // /dev/tty
        DeviceRule(allow: true, .char, 1, 5),    // /dev/zero
        DeviceRule(allow: true, .char, 1, 9),    // /dev/urandom
        DeviceRule(allow: true, .char, 5, 1),    // /dev/console
        DeviceRule(allow: true, .char, 136, nil), // /dev/pts/*
        DeviceRule(allow: true, .char, 5, 2),    // /dev/ptmx
        DeviceRule(allow: true, .char, 10, 200), // /dev/net/tun
    ]

    /// The rule list runc applies: deny everything, then the spec's rules, then the default
    /// allowlist.
    public static func effective(_ spec: [Resources.DeviceCgroupRule]) throws -> [DeviceRule] {
        let rules = try spec.enumerated().map { try DeviceRule($0.element, index: $0.offset) }
        return [DeviceRule(allow: false, .all, nil, nil)] + rules + defaultAllowed
    }
}

/// The cgroup v1 devices controller's semantics (runc's devices emulator): a default policy
/// (allow-all or deny-all, reset by `a` rules) and exceptions to it. Used to validate rules
/// and to produce the minimal rule set for both the v1 files and the v2 eBPF program.
public struct DeviceEmulator: Equatable, Sendable {
    /// True when everything not excepted is allowed.
    public private(set) var defaultAllow = true
    /// Exceptions to the default, in insertion order (allow rules when the default denies).
    public private(set) var exceptions: [DeviceRule] = []

    public init() {}

    /// Builds the emulator state from rules applied in order.
    public init(_ rules: [DeviceRule]) throws {
        for r in rules { try apply(r) }
    }

    public mutating func apply(_ rule: DeviceRule) throws {
        if rule.isWildcard {
            guard rule.major == nil, rule.minor == nil, rule.access == .all else {
                throw CgroupError.invalidValue(field: "linux.resources.devices", value: rule.line,
                                               reason: "type \"a\" rules must be \"a *:* rwm\"")
            }
            defaultAllow = rule.allow
            exceptions = []
            return
        }
        if rule.allow != defaultAllow {
            add(rule)
        } else {
            try remove(rule)
        }
    }

    private mutating func add(_ rule: DeviceRule) {
        if let i = exceptions.firstIndex(where: { $0.sameDevice(rule) }) {
            exceptions[i].access.formUnion(rule.access)
        } else {
            var r = rule
            r.allow = !defaultAllow
            exceptions.append(r)
        }
    }

    /// cgroup v1 only removes exact matches; refuse to "punch a hole" into a wildcard
    /// exception, which v1 would silently ignore (runc's hardening).
    private mutating func remove(_ rule: DeviceRule) throws {
        for e in exceptions where !e.sameDevice(rule) && e.kind == rule.kind
            && (e.major == nil || e.major == rule.major) && (e.minor == nil || e.minor == rule.minor)
            && !e.access.isDisjoint(with: rule.access) {
            throw CgroupError.invalidValue(field: "linux.resources.devices", value: rule.description,
                                           reason: "cannot punch a hole in the wildcard rule \(e.line)")
        }
        if let i = exceptions.firstIndex(where: { $0.sameDevice(rule) }) {
            exceptions[i].access.subtract(rule.access)
            if exceptions[i].access.isEmpty { exceptions.remove(at: i) }
        }
    }

    /// Whether a request (type `c`/`b`, major, minor, requested access) is allowed, as the
    /// kernel decides: with a deny default the access must be covered by one exception; with an
    /// allow default any overlapping exception denies.
    public func allows(_ kind: DeviceRule.Kind, _ major: Int64, _ minor: Int64, _ access: DeviceRule.Access) -> Bool {
        let hits = exceptions.filter { $0.kind == kind && ($0.major ?? major) == major && ($0.minor ?? minor) == minor }
        if defaultAllow { return !hits.contains { !$0.access.isDisjoint(with: access) } }
        return hits.contains { $0.access.isSuperset(of: access) }
    }

    /// The v1 writes reproducing this state: `(file, line)`, default first.
    public var v1Writes: [(file: String, line: String)] {
        [(defaultAllow ? "devices.allow" : "devices.deny", "a *:* rwm")]
            + exceptions.map { (defaultAllow ? "devices.deny" : "devices.allow", $0.line) }
    }
}

extension DeviceRule {
    func sameDevice(_ o: DeviceRule) -> Bool { kind == o.kind && major == o.major && minor == o.minor }
}

extension DeviceEmulator {
    /// The state shown by a v1 `devices.list`: `a *:* rwm` alone means allow-all; otherwise the
    /// default is deny and each line is an allow exception.
    public init(devicesList text: String) throws {
        var rules = [DeviceRule(allow: false, .all, nil, nil)]
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ")
            let mm = f.count == 3 ? f[1].split(separator: ":") : []
            guard f.count == 3, let kind = DeviceRule.Kind(rawValue: Character(String(f[0]))), mm.count == 2,
                  let access = DeviceRule.Access(String(f[2])) else {
                throw CgroupError.parseFailed(file: "devices.list", content: String(line))
            }
            func number(_ s: Substring) -> Int64? { s == "*" ? nil : Int64(s) }
            rules.append(DeviceRule(allow: true, kind, number(mm[0]), number(mm[1]), access))
        }
        try self.init(rules)
    }

    /// The v1 writes that turn `current` into this state. Between two deny-default states only
    /// the differences are written (new allows first, then removals), so running containers
    /// never see a moment with every device denied; otherwise the default is reset.
    public func v1Writes(from current: DeviceEmulator) -> [(file: String, line: String)] {
        if current == self { return [] }
        guard !defaultAllow && !current.defaultAllow else { return v1Writes }
        var writes: [(file: String, line: String)] = []
        for t in exceptions {
            let have = current.exceptions.first { $0.sameDevice(t) }?.access ?? []
            if !t.access.subtracting(have).isEmpty { writes.append(("devices.allow", t.line)) }
        }
        for e in current.exceptions {
            let keep = exceptions.first { $0.sameDevice(e) }?.access ?? []
            var gone = e
            gone.access = e.access.subtracting(keep)
            if !gone.access.isEmpty { writes.append(("devices.deny", gone.line)) }
        }
        return writes
    }
}

/// cgroup v1 devices controller: validates the rules through the emulator, then moves the
/// cgroup from its current state (devices.list) to the target with the fewest writes.
public enum V1Devices {
    public static func apply(_ rules: [DeviceRule], _ dir: CgroupDirectory) throws {
        let target = try DeviceEmulator(rules)
        let current = dir.exists("devices.list") ? try DeviceEmulator(devicesList: try dir.read("devices.list")) : nil
        let writes = current.map { target.v1Writes(from: $0) } ?? target.v1Writes
        for w in writes { try dir.write(w.file, w.line, field: "linux.resources.devices") }
    }
}
