import BrigOCI

/// How a microvm container's agent runs.
public enum MicroVMMode: String, Codable, Sendable {
    /// brig is the VMM: the agent is PID 1 of a Linux guest, reached over virtio-vsock.
    case kvm
    /// The agent runs as an ordinary host process on a Unix socket: the test transport that
    /// exercises everything but the VM (selected with BRIG_MICROVM_TRANSPORT=host-agent).
    case hostAgent = "host-agent"
}

/// Everything a monitor process (`brig vm-monitor FILE`) needs, written by `create`/`exec`.
/// The monitor is the host side of one guest process: for the container's process it is also
/// the VMM, and its pid is the container's pid; for `exec` it is a relay whose pid is the exec'd
/// process's. It inherits the caller's stdio (the process's stdio, as with runc), reports
/// readiness on fd 3 and, when asked to, takes the console socket as fd 4.
public struct MonitorConfig: Codable, Sendable {
    public enum Role: Codable, Sendable {
        case container(spec: Spec, rootfs: String)
        case exec(process: Process, execID: String)
    }
    public var id: String
    public var stateDir: String
    public var mode: MicroVMMode
    public var role: Role
    public var endpoint: AgentEndpoint
    public var terminal: Bool
    public var consoleSocket: String?
    /// fd 4 holds the console socket (foreground `run`/`exec` with a terminal).
    public var consoleOnFD4: Bool
    /// kvm: the VM to boot.
    public var plan: MicroVMPlan?
    public var diskImage: String?
    /// host-agent: the brig-agent executable.
    public var agentExecutable: String?
    /// The container's bundle on the host (the state its guest-side hooks see names it).
    public var bundle: String? = nil
    /// The creator places the monitor in the container's host cgroup after spawning it: the
    /// monitor waits for its `placed` line on fd 3 before it does anything (HostCgroup).
    public var awaitPlacement: Bool?
    /// exec: `exec --cgroup`'s sub-cgroups of the container's, made in the guest by the agent.
    public var subCgroups: [String: String]?

    public static let syncFD: Int32 = 3
    public static let consoleFD: Int32 = 4
    public static let guestRootDevice = "/dev/vda"
    public static let guestCID: UInt64 = 3

    public var execID: String? { if case let .exec(_, e) = role { return e }; return nil }

    public static func vsockPath(_ stateDir: String) -> String { stateDir + "/vsock.sock" }
    public static func agentSocketPath(_ stateDir: String) -> String { stateDir + "/agent.sock" }
}
