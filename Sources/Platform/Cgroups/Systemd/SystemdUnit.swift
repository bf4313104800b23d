import BrigOCI

/// The systemd unit holding a container's cgroup (runc's systemd driver): `<prefix>-<name>.scope`
/// in `slice`, or a slice when the name ends in `.slice`. Persisted in `CgroupState.systemd` so
/// later calls (update, delete, a `delete --force` after a killed brig) reach the same unit.
public struct SystemdUnit: Codable, Equatable, Sendable {
    /// `brig-<id>.scope`.
    public var name: String
    /// The slice it goes in (`system.slice`; `-.slice` for the root).
    public var slice: String
    /// True when it belongs to the calling user's manager (rootless), not the system's.
    public var user: Bool
    /// The container id, for the unit's Description.
    public var containerID: String
    /// True once this container's StartTransientUnit succeeded: only then is the unit its to
    /// stop (a refused create must not stop another container's unit of the same name).
    public var started: Bool? = nil

    public init(name: String, slice: String, user: Bool, containerID: String) {
        self.name = name; self.slice = slice; self.user = user; self.containerID = containerID
    }

    public var isSlice: Bool { name.hasSuffix(".slice") }

    /// From `linux.cgroupsPath` as `slice:prefix:name` (empty: `system.slice:brig:<id>`, or
    /// `user.slice:brig:<id>` for a user's manager, as runc's defaults).
    public static func parse(cgroupsPath: String?, containerID: String, user: Bool) throws -> SystemdUnit {
        let raw = cgroupsPath ?? ""
        let spec = raw.isEmpty ? "\(user ? "user.slice" : CgroupPath.defaultSlice):\(CgroupPath.defaultScopePrefix):\(containerID)" : raw
        let path = try CgroupPath.systemdPath(spec)  // validates every part
        let f = spec.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        let name = String(path[path.index(after: path.lastIndex(of: "/")!)...])
        return SystemdUnit(name: name, slice: f[0].isEmpty ? CgroupPath.defaultSlice : f[0], user: user, containerID: containerID)
    }

    /// The unit's cgroup below the manager's root cgroup (`/system.slice/brig-x.scope`).
    public func cgroupPath(managerRoot: String = "/") throws -> String {
        let parent = try CgroupPath.expandSlice(slice)
        let base = managerRoot == "/" ? "" : managerRoot
        return base + (parent == "/" ? "" : parent) + "/" + name
    }

    /// The properties StartTransientUnit gets besides the resources (runc's Apply): the slice
    /// (or, for a slice unit, a dependency on its parent), delegation, the first process,
    /// accounting, no default dependencies.
    public func startProperties(pid: Int32, unified: Bool) -> [SystemdProperty] {
        var p = [SystemdProperty("Description", .string("brig container \(containerID)"))]
        if isSlice {
            p.append(SystemdProperty("Wants", .array("s", [.string(slice)])))
        } else {
            p.append(SystemdProperty("Slice", .string(slice)))
            p.append(SystemdProperty("Delegate", .bool(true)))
            p.append(SystemdProperty("PIDs", .array("u", [.uint32(UInt32(pid))])))
        }
        p.append(SystemdProperty("MemoryAccounting", .bool(true)))
        p.append(SystemdProperty("CPUAccounting", .bool(true)))
        p.append(SystemdProperty(unified ? "IOAccounting" : "BlockIOAccounting", .bool(true)))
        p.append(SystemdProperty("TasksAccounting", .bool(true)))
        p.append(SystemdProperty("DefaultDependencies", .bool(false)))
        return p
    }
}

/// `linux.resources` → systemd unit properties, as runc's systemd driver converts them, so
/// that systemd keeps the same limits when it re-applies its own (daemon-reload, a sibling's
/// change). Whatever has no property is written to the cgroup files by the fs manager.
public enum SystemdProperties {
    /// systemd's USEC_INFINITY / CGROUP_LIMIT_MAX.
    static let infinity = UInt64.max

    /// The properties for `r` on a unified (cgroup v2) or v1 host. `devices`: whether device
    /// rules are part of it (create, or an update that changes them, and not rootless).
    /// `deviceGroup(kind, major)`: the /proc/devices name of a major (`char-pts`).
    public static func from(_ r: Resources, unified: Bool, devices: Bool,
                            deviceGroup: (DeviceRule.Kind, Int64) -> String? = ProcDevices.group) throws -> [SystemdProperty] {
        var p: [SystemdProperty] = []
        func set(_ name: String, _ v: DBusValue) {
            p.removeAll { $0.name == name }
            p.append(SystemdProperty(name, v))
        }
        func limit(_ v: Int64, _ f: String) throws -> UInt64 {
            if v == -1 { return infinity }
            guard v >= 0 else { throw CgroupError.invalidValue(field: field(f), value: String(v), reason: "negative") }
            return UInt64(v)
        }
        if devices { p += try deviceProperties(try DeviceRule.effective(r.devices ?? []), deviceGroup: deviceGroup) }
        if let m = r.memory {
            if let l = m.limit, l != 0 { set(unified ? "MemoryMax" : "MemoryLimit", .uint64(try limit(l, "memory.limit"))) }
            if unified {
                if let low = m.reservation, low != 0 { set("MemoryLow", .uint64(try limit(low, "memory.reservation"))) }
                let swap = try swapMaxV2(swap: m.swap ?? 0, memory: m.limit ?? 0)
                if swap != 0 { set("MemorySwapMax", .uint64(try limit(swap, "memory.swap"))) }
            }
        }
        if let c = r.cpu {
            if let s = c.shares, s != 0 {
                if unified { set("CPUWeight", .uint64(cpuWeight(fromShares: s))) } else { set("CPUShares", .uint64(s)) }
            }
            for q in cpuQuota(quota: c.quota ?? 0, period: c.period ?? 0) { set(q.name, q.value) }
            if let cpus = c.cpus, !cpus.isEmpty { set("AllowedCPUs", .array("y", try bitmask(cpus, field: "cpu.cpus").map(DBusValue.byte))) }
            if let mems = c.mems, !mems.isEmpty { set("AllowedMemoryNodes", .array("y", try bitmask(mems, field: "cpu.mems").map(DBusValue.byte))) }
        }
        if let pids = r.pids, pids.limit > 0 || pids.limit == -1 {
            set("TasksMax", .uint64(pids.limit == -1 ? infinity : UInt64(pids.limit)))
        }
        if !unified, let w = r.blockIO?.weight, w != 0 { set("BlockIOWeight", .uint64(UInt64(w))) }
        if unified, let u = r.unified {
            for (key, value) in u.sorted(by: { $0.key < $1.key }) {
                for q in try unifiedProperties(key, value) { set(q.name, q.value) }
            }
        }
        return p
    }

    /// The systemd version that first knows a property, for those runc checks: older ones refuse
    /// the unit (`Cannot set property …, or unknown property`), so the property is left out and
    /// the fs manager's file is the limit.
    public static let minimumVersion: [String: Int] = ["CPUQuotaPeriodUSec": 242, "AllowedCPUs": 244, "AllowedMemoryNodes": 244]

    /// `p` without what systemd `version` (nil: unknown) does not know.
    public static func supported(_ p: [SystemdProperty], version: Int?) -> [SystemdProperty] {
        p.filter { q in minimumVersion[q.name].map { min in (version ?? 0) >= min } ?? true }
    }

    /// The leading number of systemd's `Version` property (`252.39-1~deb12u2`, `v245.4-1.fc32`, `245`).
    public static func parseVersion(_ s: String) -> Int? {
        let digits = (s.hasPrefix("v") ? s.dropFirst() : Substring(s)).prefix { $0.isASCII && $0.isNumber }
        return Int(digits)
    }

    /// CPUQuotaPerSecUSec (and CPUQuotaPeriodUSec when a period is given), as runc's
    /// addCpuQuota: quota per second of CPU time, rounded up to 10 ms because systemd keeps a
    /// whole percentage; no quota with a period means unlimited.
    public static func cpuQuota(quota: Int64, period: UInt64) -> [SystemdProperty] {
        var p: [SystemdProperty] = []
        if period != 0 { p.append(SystemdProperty("CPUQuotaPeriodUSec", .uint64(period))) }
        if quota != 0 || period != 0 {
            var perSec = infinity
            if quota > 0 {
                perSec = UInt64(quota) * 1_000_000 / (period == 0 ? 100_000 : period)
                if perSec % 10_000 != 0 { perSec = (perSec / 10_000 + 1) * 10_000 }
            }
            p.append(SystemdProperty("CPUQuotaPerSecUSec", .uint64(perSec)))
        }
        return p
    }

    /// A cpuset list (`0-3,8`) as systemd's CPU mask bytes: bit n of byte n/8 for CPU n
    /// (little-endian, no trailing zero bytes).
    public static func bitmask(_ list: String, field f: String) throws -> [UInt8] {
        var bytes: [UInt8] = []
        for part in list.split(separator: ",") {
            let ends = part.trimmingWhitespace.split(separator: "-", omittingEmptySubsequences: false)
            guard (1...2).contains(ends.count), let lo = Int(ends[0]), let hi = Int(ends.last!), lo >= 0, lo <= hi, hi < 8192 else {
                throw CgroupError.invalidValue(field: field(f), value: list, reason: "not a list of numbers and ranges")
            }
            for n in lo...hi {
                while bytes.count <= n / 8 { bytes.append(0) }
                bytes[n / 8] |= UInt8(1) << UInt8(n % 8)
            }
        }
        guard !bytes.isEmpty else { throw CgroupError.invalidValue(field: field(f), value: list, reason: "empty list") }
        return bytes
    }

    /// `linux.resources.unified` keys that systemd manages (runc's unifiedResToSystemdProps);
    /// other keys are only written to their files.
    static func unifiedProperties(_ key: String, _ value: String) throws -> [SystemdProperty] {
        let v = value.trimmingWhitespace
        func number(_ s: Substring) throws -> UInt64 {
            if s == "max" { return infinity }
            guard let n = UInt64(s) else {
                throw CgroupError.invalidValue(field: field("unified.\(key)"), value: value, reason: "not a number or \"max\"")
            }
            return n
        }
        switch key {
        case "cpu.weight": return [SystemdProperty("CPUWeight", .uint64(try number(Substring(v))))]
        case "cpu.max":
            let f = v.split(separator: " ")
            guard (1...2).contains(f.count) else {
                throw CgroupError.invalidValue(field: field("unified.cpu.max"), value: value, reason: "expected \"QUOTA [PERIOD]\"")
            }
            let quota = f[0] == "max" ? Int64(-1) : Int64(try number(f[0]))
            return cpuQuota(quota: quota, period: f.count == 2 ? try number(f[1]) : 0)
        case "cpuset.cpus": return [SystemdProperty("AllowedCPUs", .array("y", try bitmask(v, field: "unified.cpuset.cpus").map(DBusValue.byte)))]
        case "cpuset.mems": return [SystemdProperty("AllowedMemoryNodes", .array("y", try bitmask(v, field: "unified.cpuset.mems").map(DBusValue.byte)))]
        case "memory.high": return [SystemdProperty("MemoryHigh", .uint64(try number(Substring(v))))]
        case "memory.low": return [SystemdProperty("MemoryLow", .uint64(try number(Substring(v))))]
        case "memory.min": return [SystemdProperty("MemoryMin", .uint64(try number(Substring(v))))]
        case "memory.max": return [SystemdProperty("MemoryMax", .uint64(try number(Substring(v))))]
        case "pids.max": return [SystemdProperty("TasksMax", .uint64(try number(Substring(v))))]
        default: return []
        }
    }

    /// DevicePolicy and DeviceAllow for the effective rule list (runc's
    /// generateDeviceProperties): `strict` with an allowlist; an allow-by-default list (which
    /// systemd cannot express as denials) becomes `auto` with no list, the eBPF program written
    /// by the fs manager enforcing the denials. `/dev/char/M:m` paths need no device node
    /// (systemd parses them); `M:*` becomes the /proc/devices group (`char-pts`), `*:*`
    /// `char-*`; `*:m` rules have no systemd form and are left to the eBPF program.
    public static func deviceProperties(_ rules: [DeviceRule],
                                        deviceGroup: (DeviceRule.Kind, Int64) -> String?) throws -> [SystemdProperty] {
        let emu = try DeviceEmulator(rules)
        if emu.defaultAllow { return [SystemdProperty("DevicePolicy", .string("auto"))] }
        var allow: [DBusValue] = []
        for r in emu.exceptions {
            let prefix = r.kind == .block ? "block-" : "char-"
            let path: String
            switch (r.major, r.minor) {
            case (nil, nil): path = prefix + "*"
            case (nil, _?): continue
            case let (major?, nil):
                guard let g = deviceGroup(r.kind, major) else { continue }
                path = prefix + g
            case let (major?, minor?): path = (r.kind == .block ? "/dev/block/" : "/dev/char/") + "\(major):\(minor)"
            }
            allow.append(.structure([.string(path), .string(r.access.letters)]))
        }
        return [SystemdProperty("DevicePolicy", .string("strict")), SystemdProperty("DeviceAllow", .array("(ss)", allow))]
    }
}

/// /proc/devices: major numbers → driver names, per kind.
public enum ProcDevices {
    /// Parses the text of /proc/devices.
    public static func parse(_ text: String) -> [DeviceRule.Kind: [Int64: String]] {
        var out: [DeviceRule.Kind: [Int64: String]] = [.char: [:], .block: [:]]
        var kind: DeviceRule.Kind?
        for line in text.split(separator: "\n") {
            if line.hasPrefix("Character") { kind = .char; continue }
            if line.hasPrefix("Block") { kind = .block; continue }
            let f = line.split(separator: " ")
            if let kind, f.count == 2, let major = Int64(f[0]) { out[kind]![major] = String(f[1]) }
        }
        return out
    }

    public static func group(_ kind: DeviceRule.Kind, _ major: Int64) -> String? {
        let text = (try? CgroupDirectory("/proc").read("devices")) ?? ""
        return parse(text)[kind]?[major]
    }
}
