import BrigOCI
import Glibc

/// A manager over a `CgroupTree` (its leaves on disk and the directories it made). The body
/// every such manager shares — create/join with undo, addProcess, apply/update, freeze/thaw,
/// pids, destroy — is this protocol's extension; V1Manager and V2Manager supply only what
/// differs: what follows a mkdir, how a frozen cgroup is recognised, the writes of a
/// `Resources`, and their freezer file. HybridManager composes the two.
protocol TreeManager: CgroupManager {
    var tree: CgroupTree { get set }
    var joinedExisting: Bool { get set }
    /// After the leaves exist (v1: cpuset inherits its parent's cpus/mems; v2: controllers are
    /// enabled down to the parent). A failure undoes the create.
    func prepareCreated() throws
    /// `create`'s error as reported (v2 explains mkdir's EAGAIN by the hierarchy limit).
    func explainCreateError(_ error: any Error) -> any Error
    /// Throws when the (existing) cgroup is frozen: `join` must not place a process in it.
    func refuseFrozen() throws
    /// Validates `r`, then writes it; device rules only when `devices`.
    func set(_ r: Resources, devices: Bool) throws
    /// The freezer of this cgroup; throws when there is none.
    func freezer() throws -> Freezer
}

/// One cgroup's freezer file, as the shared freeze loop drives it.
struct Freezer {
    let directory: CgroupDirectory
    /// The file written: `freezer.state` (v1) or `cgroup.freeze` (v2).
    let file: String
    /// What is written to freeze (true) or thaw (false).
    let request: (Bool) -> String
    /// What `current` reads once the kernel has settled in that state.
    let settled: (Bool) -> String
    /// The kernel's present state.
    let current: () throws -> String
    /// A state for an error message (`FROZEN`; v2: `frozen 1`).
    let describe: (String) -> String
    /// v1 repeats the write while waiting, as runc does, so tasks forked meanwhile freeze too.
    let repeatsWrite: Bool
}

extension TreeManager {
    func explainCreateError(_ error: any Error) -> any Error { error }

    /// mkdir -p every leaf, then `prepareCreated`; a failure removes the directories it made.
    public func create() throws {
        let before = tree.created
        do {
            _ = try tree.create()
            try prepareCreated()
        } catch {
            tree.removeCreated(since: before)
            throw explainCreateError(error)
        }
    }

    /// Like `create`, and refuses a frozen cgroup, removing what it made.
    @discardableResult public func join() throws -> Bool {
        joinedExisting = tree.populated()
        let before = tree.created
        try create()
        do {
            try refuseFrozen()
        } catch {
            tree.removeCreated(since: before)
            throw error
        }
        return joinedExisting
    }

    public func addProcess(_ pid: pid_t) throws { try tree.addProcess(pid) }
    public func apply(_ resources: Resources) throws { if !joinedExisting { try set(resources, devices: true) } }
    public func update(_ resources: Resources) throws { try set(resources, devices: resources.devices != nil) }

    public func freeze() throws { try setFrozen(true) }
    public func thaw() throws { try setFrozen(false) }

    /// Writes the request and polls until the kernel reports the state; on a timeout while
    /// freezing the cgroup is thawed again so nothing stays half-frozen.
    func setFrozen(_ frozen: Bool) throws {
        let f = try freezer()
        let request = f.request(frozen), target = f.settled(frozen)
        try f.directory.write(f.file, request)
        var last = ""
        var polls = 0
        let ok = try waitUntil(timeout: freezeTimeout) {
            last = try f.current()
            polls += 1
            if f.repeatsWrite && last != target && polls % 25 == 0 { try f.directory.write(f.file, request) }
            return last == target
        }
        if !ok {
            if frozen { try? f.directory.write(f.file, f.request(false)) }
            throw CgroupError.freezeTimeout(path: f.directory.path, wanted: f.describe(target), last: f.describe(last))
        }
    }

    public func pids() throws -> [pid_t] { try tree.pids() }

    /// Removes what create made; a joined cgroup (a pod's) stays, directories made beside it go.
    public func destroy(force: Bool) throws {
        try tree.destroy(force: force)
    }
}
