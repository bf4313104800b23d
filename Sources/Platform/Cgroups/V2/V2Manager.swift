import BrigOCI
import Glibc

/// A container cgroup on the cgroup v2 unified hierarchy (runc's fs2 driver): one directory.
public final class V2Manager: CgroupManager {
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

    var placement: V2Placement { V2Placement(mount: mount ?? "", leaf: directory) }

    /// mkdir -p, then enable every available controller in `cgroup.subtree_control` of each
    /// ancestor from the mount down to the parent (runc's CreateCgroupPath). A failure removes
    /// the directories it made; mkdir's EAGAIN names the hierarchy limit that caused it.
    public func create() throws {
        let before = tree.created
        do {
            _ = try tree.create()
        } catch let CgroupError.directory(path, e) where e.errno == EAGAIN && mount != nil {
            throw V2Placement.hierarchyLimit(creating: path, mount: mount!) ?? CgroupError.directory(path: path, e)
        }
        do {
            for dir in placement.ancestors { try enableControllers(dir) }
        } catch {
            tree.removeCreated(since: before)
            throw error
        }
    }

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

    /// Like `create`, and refuses a frozen cgroup (runc: "container's cgroup unexpectedly
    /// frozen"): the container's processes would block until something thawed it.
    @discardableResult public func join() throws -> Bool {
        joinedExisting = tree.populated()
        let before = tree.created
        try create()
        do {
            try placement.refuseFrozen()
        } catch {
            tree.removeCreated(since: before)
            throw error
        }
        return joinedExisting
    }

    public func addProcess(_ pid: pid_t) throws { try tree.addProcess(pid) }
    public func apply(_ resources: Resources) throws { if !joinedExisting { try set(resources, devices: true) } }
    public func update(_ resources: Resources) throws { try set(resources, devices: resources.devices != nil) }

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

    public func freeze() throws { try setFrozen(true) }
    public func thaw() throws { try setFrozen(false) }

    /// Writes cgroup.freeze and waits for `frozen 0|1` in cgroup.events.
    func setFrozen(_ frozen: Bool) throws {
        guard directory.exists("cgroup.freeze") else {
            throw CgroupError.unsupported(field: "cgroup.freeze", reason: "the kernel has no cgroup v2 freezer (needs Linux 5.2)")
        }
        let want = frozen ? "1" : "0"
        try directory.write("cgroup.freeze", want)
        var last = ""
        let ok = try waitUntil(timeout: freezeTimeout) {
            last = String(try directory.readKeyValues("cgroup.events")["frozen"] ?? 0)
            return last == want
        }
        if !ok {
            if frozen { try? directory.write("cgroup.freeze", "0") }
            throw CgroupError.freezeTimeout(path: directory.path, wanted: "frozen \(want)", last: "frozen \(last)")
        }
    }

    public func isFrozen() throws -> Bool {
        guard directory.exists("cgroup.freeze") else { return false }
        return try directory.read("cgroup.freeze").trimmingWhitespace == "1"
            && (try directory.readKeyValues("cgroup.events")["frozen"] ?? 0) == 1
    }

    public func pids() throws -> [pid_t] { try tree.pids() }

    public func stats() throws -> CgroupStats { try V2Stats.read(directory) }

    public func oomKillCount() throws -> UInt64 {
        try directory.readKeyValues("memory.events")["oom_kill"] ?? 0
    }

    /// Removes what create made; a joined cgroup (a pod's) stays.
    public func destroy(force: Bool) throws {
        try tree.destroy(force: force)
    }
}
