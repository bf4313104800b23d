import BrigOCI

/// The live facts a status is derived from on every call (never trusted from disk).
public struct LiveFacts: Equatable, Sendable {
    public var alive: Bool          // pid exists, is not a zombie, and has the recorded start time
    public var startPending: Bool   // the container process still waits for `start`
    public var frozen: Bool         // its cgroup is frozen
    public init(alive: Bool, startPending: Bool, frozen: Bool) {
        self.alive = alive; self.startPending = startPending; self.frozen = frozen
    }
}

/// runtime.md's lifecycle as pure functions: status from facts, and what each status allows.
public enum Lifecycle {
    public static func status(_ facts: LiveFacts) -> ContainerStatus {
        guard facts.alive else { return .stopped }
        if facts.frozen { return .paused }
        return facts.startPending ? .created : .running
    }

    public static func canStart(_ s: ContainerStatus) -> Bool { s == .created }
    public static func canKill(_ s: ContainerStatus) -> Bool { s == .created || s == .running || s == .paused }
    /// Without --force: stopped containers, and created ones (killed first, as runc does).
    public static func canDelete(_ s: ContainerStatus) -> Bool { s == .stopped || s == .created }
    public static func canPause(_ s: ContainerStatus) -> Bool { s == .running }
    public static func canResume(_ s: ContainerStatus) -> Bool { s == .paused }
    public static func canExec(_ s: ContainerStatus) -> Bool { s == .running }

    /// The message for an operation the status forbids, worded like runc's.
    public static func forbidden(_ op: String, id: String, status: ContainerStatus) -> RuntimeError {
        switch op {
        case "start" where status == .stopped:
            return RuntimeError(.invalidState, "cannot start a container that has stopped")
        case "start":
            return RuntimeError(.invalidState, "cannot start an already running container")
        case "delete":
            return RuntimeError(.invalidState, "cannot delete container \(id) that is not stopped: \(status.rawValue)")
        case "kill":
            return RuntimeError(.invalidState, "container \(id) is not running")
        default:
            return RuntimeError(.invalidState, "cannot \(op) container \(id) in status \(status.rawValue)")
        }
    }
}
