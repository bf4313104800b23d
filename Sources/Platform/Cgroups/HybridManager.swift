import BrigOCI
import Glibc

/// Hybrid hosts: cgroup v1 controllers plus cgroup2 at /sys/fs/cgroup/unified. Limits go
/// through the v1 hierarchies; the cgroup2 directory is created, joined and removed alongside
/// (so tools reading `0::` see the container), and holds hugetlb limits when hugetlb is only
/// available on cgroup2 (as on some hosts).
public final class HybridManager: CgroupManager {
    public let v1: V1Manager
    /// Nil when the layout has no cgroup2 directory.
    public let v2: V2Manager?

    public init(state: CgroupState) {
        v1 = V1Manager(state: state)
        v2 = state.paths[""] == nil ? nil : V2Manager(state: state)
    }

    public var mode: CgroupMode { .hybrid }
    public var skipDevices: Bool {
        get { v1.skipDevices }
        set { v1.skipDevices = newValue; v2?.skipDevices = true }
    }
    public var freezeTimeout: Double {
        get { v1.freezeTimeout }
        set { v1.freezeTimeout = newValue }
    }

    public var state: CgroupState {
        var s = v1.state
        if let v2 {
            let s2 = v2.state
            s.paths[""] = s2.paths[""]
            s.created += s2.created
            s.joinedExisting = s.joinedExisting || s2.joinedExisting
        }
        return s
    }

    public func create() throws {
        try v1.create()
        try v2?.create()
    }

    @discardableResult public func join() throws -> Bool {
        let joined = try v1.join()
        try v2?.join()
        return joined
    }

    public func addProcess(_ pid: pid_t) throws {
        try v1.addProcess(pid)
        try v2?.addProcess(pid)
    }

    public func apply(_ resources: Resources) throws {
        if v1.joinedExisting { return }
        try split(resources) { try v1.set($0, devices: true) }
    }

    public func update(_ resources: Resources) throws {
        try split(resources) { try v1.set($0, devices: resources.devices != nil) }
    }

    /// Routes hugepage limits to cgroup2 when v1 has no hugetlb hierarchy.
    func split(_ r: Resources, _ applyV1: (Resources) throws -> Void) throws {
        var r1 = r
        var hugetlb: [Resources.HugepageLimit] = []
        if let h = r.hugepageLimits, !h.isEmpty, v1.directory("hugetlb") == nil, let v2 {
            if !v2.directory.exists("hugetlb.\(h[0].pageSize).max") {
                throw CgroupError.unsupported(field: field("hugepageLimits"), reason: "hugetlb is neither a v1 hierarchy nor enabled on cgroup2")
            }
            hugetlb = h
            r1.hugepageLimits = nil
        }
        try applyV1(r1)
        if let v2, !hugetlb.isEmpty { try V2Controllers.applyHugetlb(hugetlb, v2.directory) }
    }

    public func freeze() throws { try v1.freeze() }
    public func thaw() throws { try v1.thaw() }
    public func isFrozen() throws -> Bool { try v1.isFrozen() }
    public func pids() throws -> [pid_t] { try v1.pids() }

    public func stats() throws -> CgroupStats {
        var s = try v1.stats()
        if s.hugetlb.isEmpty, let v2, v1.directory("hugetlb") == nil { s.hugetlb = try V2Stats.read(v2.directory).hugetlb }
        return s
    }

    public func oomKillCount() throws -> UInt64 { try v1.oomKillCount() }

    public func destroy(force: Bool) throws {
        var firstError: Error?
        do { try v1.destroy(force: force) } catch { firstError = error }
        do { try v2?.destroy(force: force) } catch { firstError = firstError ?? error }
        if let firstError { throw firstError }
    }
}
