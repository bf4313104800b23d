import BrigOCI

/// What brig keeps about a container in `<root>/<id>/state.json`. Status is not stored: it is
/// derived from `pid` + `pidStartTime` and the start socket on every load.
public struct ContainerRecord: Sendable, Equatable {
    public var id: String
    /// The backend that runs the container, with what only it reads.
    public var handle: BackendHandle
    public var bundle: String
    public var rootfs: String
    public var pid: Int32
    public var pidStartTime: UInt64
    public var created: String
    public var owner: String
    public var annotations: [String: String]?
    public var hooks: Hooks?
    /// True while `create` has not finished, or when the brig creating it was killed: the record
    /// then lists what was acquired so far (each thing recorded before it is acquired) and the
    /// status is `creating` while its creator holds the lock, `stopped` after.
    public var incomplete: Bool?
    /// Processes besides `pid` that belong to the container while it is created (the first-stage
    /// `brig init`), each with its start time so a reused pid is never signalled.
    public var helpers: [OwnedProcess]?

    public init(id: String, handle: BackendHandle, bundle: String, rootfs: String, pid: Int32, pidStartTime: UInt64,
                created: String, owner: String, annotations: [String: String]?, hooks: Hooks?) {
        self.id = id; self.handle = handle; self.bundle = bundle; self.rootfs = rootfs; self.pid = pid
        self.pidStartTime = pidStartTime; self.created = created; self.owner = owner
        self.annotations = annotations; self.hooks = hooks
    }

    /// A record for a state directory without (readable) state.json: a create killed before it
    /// recorded anything. Only the directory is known.
    public static func placeholder(id: String) -> ContainerRecord {
        var r = ContainerRecord(id: id, handle: .namespaces(NamespacesHandle()), bundle: "", rootfs: "", pid: 0,
                                pidStartTime: 0, created: "", owner: "", annotations: nil, hooks: nil)
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

// MARK: - state.json

/// Read by `init(json:at:)` (RecordReading.swift), written by `jsonValue` (RecordWriting.swift).
extension ContainerRecord: Codable {}
