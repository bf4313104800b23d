/// Which backend runs a container, and what only that backend reads of its record: typed per
/// backend, so neither the core nor a verb looks inside. state.json has it as
/// `"handle": {"namespaces": {…}}` or `"handle": {"microvm": {…}}` (RecordReading.swift, RecordWriting.swift).
public enum BackendHandle: Codable, Sendable, Equatable {
    case namespaces(NamespacesHandle)
    case microvm(MicroVMHandle)

    public var kind: BackendKind {
        switch self {
        case .namespaces: return .namespaces
        case .microvm: return .microvm
        }
    }
}

/// The namespaces backend's: the container's cgroup on every hierarchy, and the driver.
public struct NamespacesHandle: Codable, Sendable, Equatable {
    public var cgroup: CgroupRecord
    public var systemdCgroup: Bool
    public init(cgroup: CgroupRecord = CgroupRecord(), systemdCgroup: Bool = false) {
        self.cgroup = cgroup; self.systemdCgroup = systemdCgroup
    }
}

/// A cgroup as recorded: BrigCgroups' `CgroupState` in the same JSON shape (the namespaces
/// backend converts; the core does not know cgroups).
public struct CgroupRecord: Codable, Sendable, Equatable {
    /// `legacy`, `hybrid` or `unified`.
    public var mode: String
    /// Leaf directory per hierarchy, keyed by its controllers (`""`: cgroup2).
    public var paths: [String: String]
    public var unifiedMount: String?
    /// Directories created for the container, outermost first.
    public var created: [String]
    /// An existing populated cgroup was joined (a pod's): never emptied or removed.
    public var joinedExisting: Bool
    /// With `--systemd-cgroup`: the transient unit holding the cgroup.
    public var systemd: SystemdUnitRecord?
    public init(mode: String = "legacy", paths: [String: String] = [:], unifiedMount: String? = nil,
                created: [String] = [], joinedExisting: Bool = false, systemd: SystemdUnitRecord? = nil) {
        self.mode = mode; self.paths = paths; self.unifiedMount = unifiedMount
        self.created = created; self.joinedExisting = joinedExisting; self.systemd = systemd
    }
}

/// The systemd unit of a container's cgroup (BrigCgroups' SystemdUnit, same JSON shape).
public struct SystemdUnitRecord: Codable, Sendable, Equatable {
    public var name: String
    public var slice: String
    public var user: Bool
    public var containerID: String
    /// Set once this container's create started the unit (only then does delete stop it).
    public var started: Bool?
    public init(name: String, slice: String, user: Bool, containerID: String, started: Bool?) {
        self.name = name; self.slice = slice; self.user = user; self.containerID = containerID; self.started = started
    }
}

/// The microvm backend's: its transport (`kvm` or `host-agent`), the state directory its
/// monitor and sockets live in, the container's pid inside the guest, and the host cgroup that
/// holds its monitor/VMM (kvm; nil in a record of an older brig, or without a cgroup of its own).
public struct MicroVMHandle: Codable, Sendable, Equatable {
    public var mode: String
    public var stateDir: String
    public var guestPid: Int32
    public var cgroup: CgroupRecord?
    public init(mode: String, stateDir: String, guestPid: Int32, cgroup: CgroupRecord? = nil) {
        self.mode = mode; self.stateDir = stateDir; self.guestPid = guestPid; self.cgroup = cgroup
    }
}
