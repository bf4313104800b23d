import BrigOCI
import Glibc

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

/// Takes the container's id in the state store, with its first record (see Backend.create).
public typealias Reserve = (ContainerRecord?) throws(RuntimeError) -> Void

public protocol Backend {
    var name: String { get }
    /// Sets everything up and leaves the container process parked before exec. Leaves nothing
    /// behind on failure. Calls `reserve` once, before it acquires anything, with the record of
    /// what the container will hold (or nil, then saves its own): the id's state directory
    /// appears with that record in it.
    func create(_ options: CreateOptions, store: StateStore, reserve: Reserve) throws(RuntimeError) -> ContainerRecord
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

    // With defaults (below): a backend implements what it supports.
    var unsupportedReason: String? { get }
    func terminate(_ record: ContainerRecord) throws(RuntimeError)
    var reportsHostPids: Bool { get }
    var eventsPollSeconds: Double { get }
    func update(_ record: ContainerRecord, resources: Resources) throws(RuntimeError)
    func stats(_ record: ContainerRecord) throws(RuntimeError) -> CgroupStats
    func oomKillCount(_ record: ContainerRecord) throws(RuntimeError) -> UInt64
    func reclaimUnrecorded(id: String, store: StateStore) -> [String]
    func featureAnnotations() -> [String: String]
}

/// What only some backends can do. Each default refuses with `unsupported`, naming the backend;
/// a backend that can, implements it.
extension Backend {
    /// SIGKILLs the container for `delete`: by default every process it has.
    public func terminate(_ record: ContainerRecord) throws(RuntimeError) {
        try kill(record, signal: SIGKILL, all: true)
    }
    /// Whether `pids` are host pids (`ps` can then describe them with the host's ps(1)).
    public var reportsHostPids: Bool { true }
    /// How often `events` may ask for the OOM-kill count (at most; stats follow `--interval`):
    /// cheap where it is a file read, slower where each ask is a round trip.
    public var eventsPollSeconds: Double { 0.1 }
    /// Said in the refusals below, in parentheses.
    public var unsupportedReason: String? { nil }
    /// The refusal of `operation`.
    public func unsupported(_ operation: String) -> RuntimeError {
        RuntimeError(.unsupported, "\(operation): not supported by the \(name) backend" + (unsupportedReason.map { " (\($0))" } ?? ""))
    }
    /// Changes the resource limits of a running container (`update`).
    public func update(_ record: ContainerRecord, resources: Resources) throws(RuntimeError) { throw unsupported("update") }
    /// The container's resource counters (`events --stats`).
    public func stats(_ record: ContainerRecord) throws(RuntimeError) -> CgroupStats { throw unsupported("events") }
    /// How many times the OOM killer killed a process of the container (`events`).
    public func oomKillCount(_ record: ContainerRecord) throws(RuntimeError) -> UInt64 { throw unsupported("events") }
    /// With state.json unreadable (`delete --force` of a corrupt record): releases what can
    /// still be found from the id alone. Returns warnings saying what was removed or failed.
    public func reclaimUnrecorded(id: String, store: StateStore) -> [String] { [] }
    /// `brig features` annotations (`run.oci.brig.<backend>.…`): what this backend supports.
    public func featureAnnotations() -> [String: String] { [:] }
}
