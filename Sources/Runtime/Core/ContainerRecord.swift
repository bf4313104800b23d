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
    /// True while `create` has not finished, or when the brig creating it was killed: the record
    /// then lists what was acquired so far (each thing recorded before it is acquired) and the
    /// status is `creating` while its creator holds the lock, `stopped` after.
    public var incomplete: Bool?
    /// Processes besides `pid` that belong to the container while it is created (the first-stage
    /// `brig init`), each with its start time so a reused pid is never signalled.
    public var helpers: [OwnedProcess]?

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

    /// A record for a state directory without (readable) state.json: a create killed before it
    /// recorded anything. Only the directory is known.
    public static func placeholder(id: String) -> ContainerRecord {
        var r = ContainerRecord(id: id, backend: "namespaces", bundle: "", rootfs: "", pid: 0, pidStartTime: 0, created: "",
                                owner: "", annotations: nil, hooks: nil, cgroup: CgroupState(mode: .legacy, paths: [:]),
                                systemdCgroup: false)
        r.incomplete = true
        return r
    }

    public func state(_ status: ContainerStatus) -> ContainerState {
        ContainerState(id: id, status: status, pid: status == .stopped ? 0 : pid, bundle: bundle, rootfs: rootfs,
                       created: created, owner: owner, annotations: annotations)
    }
}

/// A process identified by pid and start time (/proc/<pid>/stat field 22).
public struct OwnedProcess: Codable, Sendable, Equatable {
    public var pid: Int32
    public var startTime: UInt64
    public init(pid: Int32, startTime: UInt64) { self.pid = pid; self.startTime = startTime }
}
