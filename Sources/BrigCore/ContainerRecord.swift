import BrigCgroups
import BrigOCI

/// What brig keeps about a container in `<root>/<id>/state.json`. Status is not stored: it is
/// derived from `pid` + `pidStartTime` and the start socket on every load.
public struct ContainerRecord: Codable, Sendable, Equatable {
    public var id: String
    public var backend: String
    public var bundle: String
    public var rootfs: String
    public var pid: Int32
    public var pidStartTime: UInt64
    public var created: String
    public var owner: String
    public var annotations: [String: String]?
    public var hooks: Hooks?
    /// The container's cgroup on every hierarchy (rebuild its manager with `makeCgroupManager(state:)`).
    public var cgroup: CgroupState
    public var systemdCgroup: Bool
    /// What only the record's backend reads (the microvm backend: its mode and agent endpoint).
    public var backendState: [String: String]?

    /// Leaf directories, one per hierarchy.
    public var cgroupPaths: [String] { cgroup.paths.values.sorted() }
    public var cgroupManager: any CgroupManager { makeCgroupManager(state: cgroup) }

    public init(id: String, backend: String, bundle: String, rootfs: String, pid: Int32, pidStartTime: UInt64,
                created: String, owner: String, annotations: [String: String]?, hooks: Hooks?,
                cgroup: CgroupState, systemdCgroup: Bool) {
        self.id = id; self.backend = backend; self.bundle = bundle; self.rootfs = rootfs; self.pid = pid
        self.pidStartTime = pidStartTime; self.created = created; self.owner = owner
        self.annotations = annotations; self.hooks = hooks; self.cgroup = cgroup
        self.systemdCgroup = systemdCgroup
    }

    public func state(_ status: ContainerStatus) -> ContainerState {
        ContainerState(id: id, status: status, pid: status == .stopped ? 0 : pid, bundle: bundle, rootfs: rootfs,
                       created: created, owner: owner, annotations: annotations)
    }
}
