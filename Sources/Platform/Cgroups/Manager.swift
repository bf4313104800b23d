import BrigOCI
import Glibc

/// A container's cgroup on every hierarchy of the host. Create one with
/// `makeCgroupManager(cgroupsPath:containerID:systemd:)`, or rebuild one in a later process from
/// the persisted `state` with `makeCgroupManager(state:)`.
///
/// Typical lifecycle: `join()` (or `create()`), `apply(resources)`, `addProcess(pid)`;
/// later `update`, `freeze`/`thaw`, `pids`, `stats`; finally `destroy()`.
public protocol CgroupManager: AnyObject {
    /// The host's cgroup mode.
    var mode: CgroupMode { get }
    /// Everything needed to rebuild this manager later (store it in the container state).
    var state: CgroupState { get }
    /// When true, device rules are not applied (runc's SkipDevices; rootless, tests).
    var skipDevices: Bool { get set }
    /// How long `freeze()`/`thaw()` wait for the state to settle (seconds).
    var freezeTimeout: Double { get set }

    /// `mkdir -p` the cgroup on every hierarchy, remembering which directories it created.
    func create() throws
    /// Like `create()`, but if the cgroup already exists and holds processes (a pod sandbox) it
    /// is used as is: `apply` leaves its limits alone and `destroy` does not remove it.
    /// Returns true when such an existing cgroup was joined.
    @discardableResult func join() throws -> Bool
    /// Moves a process into the cgroup on every hierarchy (cgroup.procs).
    func addProcess(_ pid: pid_t) throws
    /// The one directory a new process can be born in instead of `addProcess` (clone3
    /// CLONE_INTO_CGROUP): the leaf on a pure cgroup v2 host, once it exists; nil on v1 and
    /// hybrid hosts, and while the cgroup is not known yet (a systemd unit not started).
    var spawnDirectory: String? { get }
    /// Applies `linux.resources` to a new cgroup (devices: deny all, spec rules, runc's defaults).
    func apply(_ resources: Resources) throws
    /// Changes limits of a running container (`brig update`); device rules only if given.
    /// Validation (unsupported fields, checkBeforeUpdate) happens before any write.
    func update(_ resources: Resources) throws
    /// Freezes every process and waits until the kernel reports the cgroup frozen.
    func freeze() throws
    /// Thaws and waits until the kernel reports the cgroup thawed.
    func thaw() throws
    func isFrozen() throws -> Bool
    /// Processes in the cgroup and its sub-cgroups, sorted.
    func pids() throws -> [pid_t]
    /// Resource usage in the shape of `runc events --stats`.
    func stats() throws -> CgroupStats
    /// Number of OOM kills in the cgroup.
    func oomKillCount() throws -> UInt64
    /// Removes the leaf directories (and the parents it created, if empty) on every hierarchy,
    /// retrying EBUSY briefly. Directories it did not create are kept unless `force`.
    /// Already-removed directories are not an error.
    func destroy(force: Bool) throws
}

extension CgroupManager {
    public func destroy() throws { try destroy(force: false) }

    /// SIGKILLs what is left in a cgroup brig made (orphans of a container that stopped), until
    /// it is empty or `attempts` looks `interval` apart have passed. A joined cgroup (a pod's)
    /// is left alone: its other processes are not ours.
    public func killRemaining(attempts: Int, interval: timespec) {
        guard !state.joinedExisting else { return }
        for _ in 0..<attempts {
            let pids = (try? pids()) ?? []
            if pids.isEmpty { return }
            for pid in pids { kill(pid, SIGKILL) }
            var ts = interval; nanosleep(&ts, nil)
        }
    }
}

/// The persistable description of a container's cgroup.
public struct CgroupState: Codable, Equatable, Sendable {
    public var mode: CgroupMode
    /// Leaf directory per hierarchy, keyed by its controllers joined with `,` (e.g.
    /// `cpu,cpuacct`, `name=systemd`); the cgroup2 directory has the key `""`.
    public var paths: [String: String]
    /// The cgroup2 mount point (`/sys/fs/cgroup` or `/sys/fs/cgroup/unified`), if any.
    public var unifiedMount: String?
    /// Directories this manager created, outermost first.
    public var created: [String]
    /// True when `join()` found an existing populated cgroup.
    public var joinedExisting: Bool
    /// With `--systemd-cgroup`: the systemd unit that holds the cgroup (SystemdManager).
    public var systemd: SystemdUnit? = nil

    public init(mode: CgroupMode, paths: [String: String], unifiedMount: String? = nil,
                created: [String] = [], joinedExisting: Bool = false) {
        self.mode = mode; self.paths = paths; self.unifiedMount = unifiedMount
        self.created = created; self.joinedExisting = joinedExisting
    }

    /// Leaf directory per controller, as runc's state.json `cgroup_paths` lists them: co-mounted
    /// controllers each get an entry (`cpu`, `cpuacct`), cgroup2 is `""`.
    public var controllerPaths: [String: String] {
        var out: [String: String] = [:]
        for (key, path) in paths {
            if key.isEmpty { out[""] = path; continue }
            for c in key.split(separator: ",") { out[String(c)] = path }
        }
        return out
    }

    /// Computes where the container's cgroup goes. `root` replaces `/sys/fs/cgroup` (tests).
    public static func resolve(cgroupsPath: String?, containerID: String, systemd: Bool,
                               layout: CgroupLayout, root: String = defaultCgroupRoot) throws -> CgroupState {
        let path = try CgroupPath.parse(cgroupsPath: cgroupsPath, containerID: containerID, systemd: systemd)
        func rebase(_ mount: String) -> String {
            mount.hasPrefix(defaultCgroupRoot) ? root + mount.dropFirst(defaultCgroupRoot.count) : mount
        }
        func join(_ mount: String, _ inner: String) -> String { inner == "/" ? mount : mount + inner }
        var paths: [String: String] = [:]
        if layout.mode != .unified {
            for h in layout.v1 {
                paths[h.controllers.joined(separator: ",")] = join(rebase(h.mountPoint), path.inner(ownPath: h.ownPath))
            }
        }
        let unified = layout.unifiedMount.map(rebase)
        if let unified {
            // On a unified host a relative path goes below the *parent* of the caller's cgroup
            // (runc's fs2 driver): the caller's own cgroup holds processes (containerd.service,
            // a session scope), so the no-internal-processes rule forbids enabling controllers
            // below it. On a hybrid host the cgroup2 tree is treated like a v1 hierarchy.
            let base = layout.mode == .unified ? CgroupPath.parent(layout.unifiedOwnPath) : layout.unifiedOwnPath
            paths[""] = join(unified, path.inner(ownPath: base))
        }
        return CgroupState(mode: layout.mode, paths: paths, unifiedMount: layout.mode == .legacy ? nil : unified)
    }
}

/// Builds the manager for a container: resolves `linux.cgroupsPath` (absolute, relative to the
/// caller's cgroup, empty = the container id, or systemd `slice:prefix:name` when `systemd`)
/// on the host's layout. With `systemd`, fails with `CgroupError.systemdNotRunning` when
/// systemd is not the init system; otherwise the cgroup is a transient systemd unit
/// (SystemdManager; `systemdUser`: the calling user's manager). `root` and `layout` are
/// injectable for tests.
public func makeCgroupManager(cgroupsPath: String?, containerID: String, systemd: Bool, systemdUser: Bool = false,
                              layout: CgroupLayout? = nil, root: String = defaultCgroupRoot) throws -> any CgroupManager {
    if systemd && layout == nil && !systemdRunning() { throw CgroupError.systemdNotRunning }
    if systemd {
        return try SystemdManager.make(cgroupsPath: cgroupsPath, containerID: containerID, user: systemdUser,
                                       layout: layout ?? CgroupLayout.current(), root: root)
    }
    let state = try CgroupState.resolve(cgroupsPath: cgroupsPath, containerID: containerID, systemd: systemd,
                                        layout: layout ?? CgroupLayout.current(), root: root)
    return makeCgroupManager(state: state)
}

/// Rebuilds a manager from persisted state.
public func makeCgroupManager(state: CgroupState) -> any CgroupManager {
    if state.paths.isEmpty { return NoCgroupManager(mode: state.mode) }
    if let unit = state.systemd { return SystemdManager(unit: unit, fs: makeCgroupManager(state: SystemdManager.stateWithoutUnit(state))) }
    switch state.mode {
    case .unified: return V2Manager(state: state)
    case .legacy: return V1Manager(state: state)
    case .hybrid: return HybridManager(state: state)
    }
}

// MARK: - shared directory handling

/// The leaf directories of one manager and the directories it created.
struct CgroupTree {
    var leaves: [String]
    var created: [String]

    /// mkdir -p every leaf; returns the newly created directories.
    mutating func create() throws -> [String] {
        var new: [String] = []
        for leaf in leaves {
            let made = try makeDirectories(leaf)
            new += made
            created += made.filter { !created.contains($0) }
        }
        return new
    }

    /// Removes the directories created after `created` was `before` (deepest first) and forgets
    /// them: what a failed create or join leaves is undone before the error goes up.
    mutating func removeCreated(since before: [String]) {
        let made = created.filter { !before.contains($0) }
        for dir in made.reversed() { _ = rmdir(dir) }
        created = before
    }

    /// Whether any leaf exists and has processes.
    func populated() -> Bool {
        leaves.contains { leaf in
            let procs = (try? CgroupDirectory(leaf).read("cgroup.procs")) ?? ""
            return !procs.trimmingWhitespace.isEmpty
        }
    }

    func addProcess(_ pid: pid_t) throws {
        for leaf in leaves { try CgroupDirectory(leaf).write("cgroup.procs", String(pid)) }
    }

    /// Processes of every leaf and its descendants, sorted and unique.
    func pids() throws -> [pid_t] {
        var all = Set<pid_t>()
        func walk(_ dir: CgroupDirectory) throws {
            guard dir.isPresent else { return }
            for line in try dir.read("cgroup.procs").split(separator: "\n") {
                if let p = pid_t(line.trimmingWhitespace) { all.insert(p) }
            }
            for child in dir.children() { try walk(child) }
        }
        for leaf in leaves { try walk(CgroupDirectory(leaf)) }
        return all.sorted()
    }

    mutating func destroy(force: Bool) throws {
        var firstError: Error?
        for leaf in leaves where force || created.contains(leaf) {
            do { try removeCgroupTree(leaf) } catch { firstError = firstError ?? error }
        }
        // Parents we created go too when nothing else uses them (they may be shared).
        for dir in created.reversed() where !leaves.contains(dir) {
            _ = rmdir(dir)
        }
        created = created.filter { isDirectory($0) }
        if let firstError { throw firstError }
    }
}

/// Polls `check` until it returns true or `timeout` seconds pass.
func waitUntil(timeout: Double, _ check: () throws -> Bool) throws -> Bool {
    let step: UInt32 = 1_000
    var waited = 0.0
    while true {
        if try check() { return true }
        if waited >= timeout { return false }
        usleep(step)
        waited += Double(step) / 1_000_000
    }
}

/// A container without a cgroup of its own: a rootless container where the user may not create
/// one (no delegated subtree) and no limits were asked for, as runc runs it. Placement is a
/// no-op; anything that needs the cgroup says why it cannot work.
public final class NoCgroupManager: CgroupManager {
    public let mode: CgroupMode
    public var skipDevices = true
    public var freezeTimeout = 5.0
    public init(mode: CgroupMode) { self.mode = mode }

    public var state: CgroupState { CgroupState(mode: mode, paths: [:]) }
    static let why = "the container has no cgroup of its own (rootless, and the user may not create one here)"
    func unsupported(_ what: String) -> CgroupError { .unsupported(field: what, reason: Self.why) }

    public func create() throws {}
    public func join() throws -> Bool { false }
    public func addProcess(_ pid: pid_t) throws {}
    public func apply(_ resources: Resources) throws {
        if resources.requestsLimits { throw unsupported("linux.resources") }
    }
    public func update(_ resources: Resources) throws { throw unsupported("update") }
    public func freeze() throws { throw unsupported("pause") }
    public func thaw() throws { throw unsupported("resume") }
    public func isFrozen() throws -> Bool { false }
    public func pids() throws -> [pid_t] { throw unsupported("the container's processes") }
    public func stats() throws -> CgroupStats { throw unsupported("stats") }
    public func oomKillCount() throws -> UInt64 { 0 }
    public func destroy(force: Bool) throws {}
}

extension CgroupManager {
    public var spawnDirectory: String? { nil }
}
