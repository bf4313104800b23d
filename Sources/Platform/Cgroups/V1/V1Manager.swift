import BrigOCI
import Glibc

/// A container cgroup on cgroup v1 hierarchies (runc's fs driver): one leaf per hierarchy.
public final class V1Manager: TreeManager {
    public let mode: CgroupMode
    public var skipDevices = false
    public var freezeTimeout = 5.0
    /// Leaf directory per hierarchy key (controllers joined with `,`).
    public let paths: [String: String]
    var tree: CgroupTree
    var joinedExisting: Bool
    let unifiedMount: String?

    /// `state.paths` may include the cgroup2 key `""`; a V1Manager ignores it.
    public init(state: CgroupState) {
        mode = state.mode
        let leaves = state.paths.filter { !$0.key.isEmpty }
        paths = leaves
        unifiedMount = state.unifiedMount
        tree = CgroupTree(leaves: leaves.keys.sorted().map { leaves[$0]! },
                          created: state.created.filter { p in leaves.values.contains { p == $0 || $0.hasPrefix(p + "/") } })
        joinedExisting = state.joinedExisting
    }

    public var state: CgroupState {
        CgroupState(mode: mode, paths: paths, unifiedMount: unifiedMount, created: tree.created, joinedExisting: joinedExisting)
    }

    /// The leaf directory of the hierarchy holding `controller`, if that controller is mounted.
    public func directory(_ controller: String) -> CgroupDirectory? {
        paths.first { $0.key.split(separator: ",").contains { $0 == controller } }.map { CgroupDirectory($0.value) }
    }

    /// A new cpuset cgroup starts empty: it gets its parent's cpus and mems.
    func prepareCreated() throws {
        if let cpuset = directory("cpuset") { try V1CPU.inheritCpuset(leaf: cpuset.path) }
    }

    /// A frozen (or freezing) cgroup is refused, as runc does.
    func refuseFrozen() throws {
        if let d = directory("freezer"), let s = try? d.read("freezer.state").trimmingWhitespace, s == "FROZEN" || s == "FREEZING" {
            throw CgroupError.frozen(path: d.path, reason: "\(d.file("freezer.state")) is \(s)")
        }
    }

    /// Validates everything that can be checked up front, then writes controller by controller
    /// in runc's order (cpuset, devices, memory, cpu, pids, blkio, hugetlb, net_cls, net_prio, rdma).
    func set(_ r: Resources, devices: Bool) throws {
        let plan = try plan(r, devices: devices)
        for step in plan { try step() }
    }

    /// The writes for `r`, each bound to its directory; throws before any write for fields
    /// this host cannot honour.
    func plan(_ r: Resources, devices: Bool) throws -> [() throws -> Void] {
        var steps: [() throws -> Void] = []
        func need(_ controller: String, _ name: String) throws -> CgroupDirectory {
            guard let d = directory(controller) else {
                throw CgroupError.unsupported(field: field(name), reason: "the cgroup v1 \(controller) controller is not mounted")
            }
            return d
        }
        if let u = r.unified, !u.isEmpty {
            throw CgroupError.invalidConfiguration(field: field("unified"), reason: "cannot use unified on cgroup v1 (this host's controllers are on cgroup v1 hierarchies)")
        }
        if let c = r.cpu, !(c.cpus ?? "").isEmpty || !(c.mems ?? "").isEmpty {
            let d = try need("cpuset", "cpu.cpus")
            steps.append { try V1CPU.applyCpuset(c, d) }
        }
        if devices && !skipDevices {
            let rules = try DeviceRule.effective(r.devices ?? [])
            _ = try DeviceEmulator(rules)
            let d = try need("devices", "devices")
            steps.append { try V1Devices.apply(rules, d) }
        }
        if let m = r.memory {
            let d = try need("memory", "memory")
            try checkMemoryUsage(m, d, usageFile: "memory.usage_in_bytes")
            if let s = m.swappiness, s > 100 {
                throw CgroupError.invalidValue(field: field("memory.swappiness"), value: String(s), reason: "valid range is 0-100")
            }
            steps.append { try V1Memory.apply(m, d) }
        }
        if let c = r.cpu, cpuControllerFieldsSet(c) {
            let d = try need("cpu", "cpu")
            steps.append { try V1CPU.apply(c, d) }
        }
        if let p = r.pids {
            let d = try need("pids", "pids")
            steps.append { try V1Controllers.applyPids(p, d) }
        }
        if let b = r.blockIO {
            let d = try need("blkio", "blockIO")
            steps.append { try V1Controllers.applyBlockIO(b, d) }
        }
        if let h = r.hugepageLimits, !h.isEmpty {
            let d = try need("hugetlb", "hugepageLimits")
            steps.append { try V1Controllers.applyHugetlb(h, d) }
        }
        if let n = r.network {
            if n.classID != nil {
                let d = try need("net_cls", "network.classID")
                steps.append { try V1Controllers.applyNetCls(n, d) }
            }
            if !(n.priorities ?? []).isEmpty {
                let d = try need("net_prio", "network.priorities")
                steps.append { try V1Controllers.applyNetPrio(n, d) }
            }
        }
        if let rd = r.rdma, !rd.isEmpty {
            let d = try need("rdma", "rdma")
            steps.append { try V1Controllers.applyRdma(rd, d) }
        }
        return steps
    }

    /// freezer.state passes through FREEZING to FROZEN; the write is repeated while freezing.
    func freezer() throws -> Freezer {
        guard let d = directory("freezer") else {
            throw CgroupError.unsupported(field: "freezer", reason: "the cgroup v1 freezer controller is not mounted")
        }
        let state: (Bool) -> String = { $0 ? "FROZEN" : "THAWED" }
        return Freezer(directory: d, file: "freezer.state", request: state, settled: state,
                       current: { try d.read("freezer.state").trimmingWhitespace }, describe: { $0 }, repeatsWrite: true)
    }

    public func isFrozen() throws -> Bool {
        guard let d = directory("freezer") else { return false }
        return try d.read("freezer.state").trimmingWhitespace == "FROZEN"
    }

    public func stats() throws -> CgroupStats { try V1Stats.read(directory) }

    public func oomKillCount() throws -> UInt64 {
        guard let d = directory("memory") else { return 0 }
        return try d.readKeyValues("memory.oom_control")["oom_kill"] ?? 0
    }
}

/// Whether any field of the cpu (not cpuset) controller is set.
func cpuControllerFieldsSet(_ c: Resources.CPU) -> Bool {
    c.shares != nil || c.quota != nil || c.period != nil || c.burst != nil || c.idle != nil
        || c.realtimeRuntime != nil || c.realtimePeriod != nil
}
