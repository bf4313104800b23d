import BrigOCI

/// What a CLI verb asks of a backend. The namespaces backend implements it now; the microvm
/// backend implements the same protocol.
public struct CreateOptions: Sendable {
    public var id: String
    public var bundle: String
    public var spec: Spec
    public var pidFile: String?
    public var consoleSocket: String?
    public var noPivot = false
    public var noNewKeyring = false
    public var preserveFDs = 0
    public var systemdCgroup = false
    /// Rootless (`--rootless`, or auto: not root): no device rules, and cgroup permission errors
    /// are not fatal when no limits were asked for (runc's rootless cgroup manager).
    public var rootless = false
    /// `run` in the foreground: the caller is a subreaper that will wait for the container.
    public var foreground = false
    /// The console socket fd when the caller already holds it (foreground `run` with a terminal).
    public var consoleFD: Int32? = nil
    /// The container's fds 0, 1, 2 when they are not the caller's own (brig-agent's pipes).
    public var stdio: [Int32]? = nil
    /// Runs after the config's prestart/createRuntime hooks, at their point of the lifecycle
    /// (namespaces created, before createContainer): brig-agent asks its host to run the hooks
    /// there. A throw fails the create like a failing hook.
    public var runtimeHooks: (@Sendable (ContainerState) throws -> Void)? = nil
    public init(id: String, bundle: String, spec: Spec) { self.id = id; self.bundle = bundle; self.spec = spec }
}

/// A new process in a running container (`exec`).
public struct ExecOptions: Sendable {
    public var process: Process
    public var pidFile: String?
    public var consoleSocket: String?
    public var consoleFD: Int32? = nil
    public var preserveFDs = 0
    /// The process's fds 0, 1, 2 when they are not the caller's own (brig-agent's pipes).
    public var stdio: [Int32]? = nil
    /// runc's `exec --cgroup`: a sub-cgroup of the container's to run in, by controller ("" for
    /// every hierarchy).
    public var subCgroups: [String: String] = [:]
    public init(process: Process) { self.process = process }
}

public protocol Backend {
    var name: String { get }
    /// Sets everything up and leaves the container process parked before exec. Leaves nothing
    /// behind on failure.
    func create(_ options: CreateOptions, store: StateStore) throws(RuntimeError) -> ContainerRecord
    /// Releases the parked process; returns once it has exec'd (or reports why it could not).
    func start(_ record: ContainerRecord, store: StateStore) throws(RuntimeError)
    /// Starts `options.process` inside the container; returns its host pid once it has exec'd.
    func exec(_ options: ExecOptions, record: ContainerRecord, spec: Spec, store: StateStore) throws(RuntimeError) -> Int32
    func facts(_ record: ContainerRecord, store: StateStore) -> LiveFacts
    func kill(_ record: ContainerRecord, signal: Int32, all: Bool) throws(RuntimeError)
    /// Suspends / resumes every process of the container (cgroup freezer; vCPUs for a VM).
    func pause(_ record: ContainerRecord) throws(RuntimeError)
    func resume(_ record: ContainerRecord) throws(RuntimeError)
    /// The container's processes (pids as its backend sees them).
    func pids(_ record: ContainerRecord) throws(RuntimeError) -> [Int32]
    /// Removes what the container left (cgroups, sockets); the caller removes the state dir.
    func destroy(_ record: ContainerRecord, store: StateStore) throws(RuntimeError)
}
