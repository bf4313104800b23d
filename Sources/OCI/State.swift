// The state of a container as `state` reports it (runtime.md "State"), plus the fields runc adds
// (rootfs, created, owner) that containerd and podman read.

public enum ContainerStatus: String, Codable, Sendable, CaseIterable {
    case creating, created, running, paused, stopped
}

public struct ContainerState: Codable, Sendable, Equatable {
    public var ociVersion: String
    public var id: String
    public var status: ContainerStatus
    public var pid: Int32
    public var bundle: String
    public var rootfs: String
    public var created: String
    public var owner: String
    public var annotations: [String: String]?

    public init(ociVersion: String = Spec.version, id: String, status: ContainerStatus, pid: Int32,
                bundle: String, rootfs: String, created: String, owner: String = "",
                annotations: [String: String]? = nil) {
        self.ociVersion = ociVersion; self.id = id; self.status = status; self.pid = pid
        self.bundle = bundle; self.rootfs = rootfs; self.created = created; self.owner = owner
        self.annotations = annotations
    }
}

/// What a seccomp agent receives with the notify fd (runtime-spec `ContainerProcessState`,
/// sent by `SeccompListener.send`; encoded by BrigCore's `ContainerProcessState.json`).
public struct ContainerProcessState: Codable, Sendable, Equatable {
    public var ociVersion: String
    /// Names of the passed fds, in order: always `["seccompFd"]`.
    public var fds: [String]
    public var pid: Int32
    public var metadata: String?
    public var state: ContainerState

    public init(state: ContainerState, pid: Int32, metadata: String?) {
        self.ociVersion = state.ociVersion; self.fds = ["seccompFd"]; self.pid = pid
        self.metadata = (metadata?.isEmpty ?? true) ? nil : metadata; self.state = state
    }
}
