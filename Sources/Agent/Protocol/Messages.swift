import BrigOCI

/// What every agent call throws. `code` mirrors BrigCore's `RuntimeError.Kind` (so the host CLI can
/// print the guest's message and exit like runc; the mapping is in BrigAgent and BrigMicroVM, the
/// two ends) plus the transport's own failures.
public struct AgentError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Code: String, Codable, Sendable {
        case notFound, exists, invalidState, config, system, hook, usage, unsupported, internalError
        /// The peer sent bytes that are not a valid frame or message.
        case protocolError
        /// The peer speaks another protocol version.
        case versionMismatch
        /// Reading or writing the transport failed, or the peer hung up.
        case connection
    }
    public var code: Code
    public var message: String
    public init(_ code: Code, _ message: String) { self.code = code; self.message = message }
    public var description: String { message }
}

/// Where the container's root filesystem comes from inside the guest.
public enum AgentRootfs: Codable, Equatable, Sendable {
    /// A directory the agent can already see (host tests, virtiofs).
    case path(String)
    /// A block device the agent mounts first (the guest's virtio-blk disk).
    case block(device: String, fstype: String)
}

public struct AgentCreate: Codable, Equatable, Sendable {
    public var id: String
    /// The bundle's config; `root.path` is replaced by the agent.
    public var spec: Spec
    public var rootfs: AgentRootfs
    /// Give the container a pty (its output comes back as stdout frames).
    public var terminal: Bool
    /// The host runs prestart/createRuntime/createContainer hooks: once the container's
    /// namespaces exist (before pivot_root), the agent sends a `hooks` frame on the request's channel and
    /// waits for `hooksDone` (runtime.md's order, with those hooks in the host's namespaces).
    public var hostHooks: Bool?
    /// The bundle as the host names it: the container's state (its startContainer hooks' stdin)
    /// reports it, and relative paths in `spec` are relative to it. nil: the agent's own copy.
    public var bundle: String?
    public init(id: String, spec: Spec, rootfs: AgentRootfs, terminal: Bool = false, hostHooks: Bool? = nil, bundle: String? = nil) {
        self.id = id; self.spec = spec; self.rootfs = rootfs; self.terminal = terminal; self.hostHooks = hostHooks
        self.bundle = bundle
    }
}

/// The `hooks` frame: the container's init (guest pid) waits in its new namespaces.
public struct AgentHooksDue: Codable, Equatable, Sendable {
    public var pid: Int32
    public init(pid: Int32) { self.pid = pid }
}

/// The `hooksDone` frame: nil `error` lets the container go on; otherwise create fails with it.
public struct AgentHooksDone: Codable, Equatable, Sendable {
    public var error: String?
    public init(error: String? = nil) { self.error = error }
}

public struct AgentState: Codable, Equatable, Sendable {
    public enum Status: String, Codable, Sendable { case created, running, stopped, paused }
    public var id: String
    public var status: Status
    /// Guest pid of the container's init (0 once gone).
    public var pid: Int32
    /// Exit status (code, or 128+signal) once stopped, if the agent reaped it.
    public var exitStatus: Int32?
    public init(id: String, status: Status, pid: Int32, exitStatus: Int32? = nil) {
        self.id = id; self.status = status; self.pid = pid; self.exitStatus = exitStatus
    }
}

/// The guest cgroup's counters (as `runc events --stats` reports them).
public struct AgentStats: Codable, Equatable, Sendable {
    public var cgroup: CgroupStats
    /// OOM kills in the container's cgroup so far (for `events`; absent from older agents).
    public var oomKills: UInt64?
    public init(cgroup: CgroupStats, oomKills: UInt64? = nil) { self.cgroup = cgroup; self.oomKills = oomKills }
    public var memoryUsage: UInt64 { cgroup.memory.usage.usage }
    public var cpuUsageNanos: UInt64 { cgroup.cpu.usage.total }
    public var pidsCurrent: UInt64 { cgroup.pids.current }
}

/// One request; the frame's channel carries its id and the response echoes it.
public enum AgentRequest: Codable, Equatable, Sendable {
    case create(AgentCreate)
    case start(id: String)
    /// `subCgroups`: `exec --cgroup`'s sub-cgroups of the container's (controller or "" -> path).
    case exec(id: String, execID: String, process: Process, terminal: Bool, subCgroups: [String: String]? = nil)
    case kill(id: String, execID: String?, signal: Int32, all: Bool)
    case wait(id: String, execID: String?)
    case state(id: String)
    case ps(id: String)
    case resize(id: String, execID: String?, rows: UInt16, cols: UInt16)
    case stats(id: String)
    case delete(id: String, force: Bool)
    /// Configures the guest's interface as the engine's namespace has it (once, before create;
    /// refused by an agent that is not a guest's PID 1).
    case network(AgentNetwork)
}

public struct AgentResponse: Codable, Equatable, Sendable {
    public var error: AgentError.Code?
    public var message: String?
    public var pid: Int32?
    public var status: Int32?
    public var state: AgentState?
    public var pids: [Int32]?
    public var stats: AgentStats?
    public init() {}
    public static func failure(_ e: AgentError) -> AgentResponse {
        var r = AgentResponse(); r.error = e.code; r.message = e.message; return r
    }
}

/// The first frame each side sends.
public struct AgentHello: Codable, Equatable, Sendable {
    public var version: Int
    /// Set by the agent when it refuses the client's version.
    public var error: String?
    public init(version: Int = AgentProtocol.version, error: String? = nil) { self.version = version; self.error = error }
}

/// Sent on a process's channel when the agent has reaped it.
public struct AgentExit: Codable, Equatable, Sendable {
    /// Shell-style: the exit code, or 128+signal.
    public var status: Int32
    public init(status: Int32) { self.status = status }
}
