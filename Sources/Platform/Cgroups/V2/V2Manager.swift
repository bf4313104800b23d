import BrigOCI
import Glibc

/// A container cgroup on the cgroup v2 unified hierarchy (runc's fs2 driver): one directory.
public final class V2Manager: TreeManager {
    public let mode: CgroupMode
    public var skipDevices = false
    public var freezeTimeout = 5.0
    /// The container's cgroup2 directory.
    public let directory: CgroupDirectory
    let mount: String?
    var tree: CgroupTree
    var joinedExisting: Bool

    /// Uses `state.paths[""]`.
    public init(state: CgroupState) {
        mode = state.mode
        let path = state.paths[""] ?? ""
        directory = CgroupDirectory(path)
        mount = state.unifiedMount
        tree = CgroupTree(leaves: [path], created: state.created.filter { path == $0 || path.hasPrefix($0 + "/") })
        joinedExisting = state.joinedExisting
    }

    public var state: CgroupState {
        CgroupState(mode: mode, paths: ["": directory.path], unifiedMount: mount, created: tree.created, joinedExisting: joinedExisting)
    }

    public var spawnDirectory: String? { mode == .unified ? directory.path : nil }

    var placement: V2Placement { V2Placement(mount: mount ?? "", leaf: directory) }

    /// Enables every available controller in `cgroup.subtree_control` of each ancestor from
    /// the mount down to the parent (runc's CreateCgroupPath).
    func prepareCreated() throws {
        for dir in placement.ancestors { try enableControllers(dir) }
    }

    /// mkdir's EAGAIN names the hierarchy limit that caused it.
    func explainCreateError(_ error: any Error) -> any Error {
        guard case let CgroupError.directory(path, e) = error, e.errno == EAGAIN, let mount else { return error }
        return V2Placement.hierarchyLimit(creating: path, mount: mount) ?? error
    }

    /// A frozen cgroup is refused (runc: "container's cgroup unexpectedly frozen"): the
    /// container's processes would block until something thawed it.
    func refuseFrozen() throws { try placement.refuseFrozen() }

    /// Writes every controller of cgroup.controllers to cgroup.subtree_control; those the kernel
    /// refuses (EBUSY in a cgroup with processes, EACCES where not delegated, cpu with realtime
    /// tasks) are left out: `set` explains them when a limit needs one.
    func enableControllers(_ d: CgroupDirectory) throws {
        guard d.exists("cgroup.controllers"), d.exists("cgroup.subtree_control") else { return }
        let available = try d.read("cgroup.controllers").split(separator: " ").map { "+" + $0 }
        if available.isEmpty { return }
        if (try? d.write("cgroup.subtree_control", available.joined(separator: " "))) == nil {
            for c in available { try? d.write("cgroup.subtree_control", c) }
        }
    }

    /// Validates up front, then writes in runc's fs2 order: pids, memory, io, cpu, cpuset,
    /// hugetlb, rdma, devices, unified (last, so it overrides).
    func set(_ r: Resources, devices: Bool) throws {
        let d = directory
        try V2Controllers.checkSupported(r)
        try placement.check(V2Controllers.required(r))
        if let m = r.memory {
            try checkMemoryUsage(m, d, usageFile: "memory.current")
            _ = try swapMaxV2(swap: m.swap ?? 0, memory: m.limit ?? 0)
        }
        let rules = devices && !skipDevices ? try DeviceRule.effective(r.devices ?? []) : nil
        if let rules { _ = try DeviceEmulator(rules) }
        try placement.makeThreadedIfInvalid()
        if let p = r.pids { try V2Controllers.applyPids(p, d) }
        if let m = r.memory { try V2Controllers.applyMemory(m, d) }
        if let b = r.blockIO { try V2Controllers.applyIO(b, d) }
        if let c = r.cpu {
            try V2Controllers.applyCPU(c, d)
            try V2Controllers.applyCpuset(c, d)
        }
        if let h = r.hugepageLimits { try V2Controllers.applyHugetlb(h, d) }
        if let rd = r.rdma { try V2Controllers.applyRdma(rd, d) }
        if let rules { try V2Devices.apply(rules, d) }
        if let u = r.unified { try V2Controllers.applyUnified(u, d) }
    }

    /// cgroup.freeze is written; cgroup.events says `frozen 0|1` once the kernel is done.
    func freezer() throws -> Freezer {
        let d = directory
        guard d.exists("cgroup.freeze") else {
            throw CgroupError.unsupported(field: "cgroup.freeze", reason: "the kernel has no cgroup v2 freezer (needs Linux 5.2)")
        }
        let bit: (Bool) -> String = { $0 ? "1" : "0" }
        return Freezer(directory: d, file: "cgroup.freeze", request: bit, settled: bit,
                       current: { String(try d.readKeyValues("cgroup.events")["frozen"] ?? 0) },
                       describe: { "frozen \($0)" }, repeatsWrite: false)
    }

    public func isFrozen() throws -> Bool {
        guard directory.exists("cgroup.freeze") else { return false }
        return try directory.read("cgroup.freeze").trimmingWhitespace == "1"
            && (try directory.readKeyValues("cgroup.events")["frozen"] ?? 0) == 1
    }

    public func stats() throws -> CgroupStats { try V2Stats.read(directory) }

    public func oomKillCount() throws -> UInt64 {
        try directory.readKeyValues("memory.events")["oom_kill"] ?? 0
    }
}
