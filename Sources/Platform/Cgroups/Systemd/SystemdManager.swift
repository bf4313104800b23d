import BrigOCI
import Glibc

/// The systemd cgroup driver (`--systemd-cgroup`, runc's systemd driver): the container's cgroup
/// is a transient unit of systemd's, `<prefix>-<name>.scope` with `Delegate=yes`, started over
/// D-Bus with its first process and the limits systemd manages as unit properties; everything
/// else (the cgroup files systemd does not manage, the devices eBPF program, the freezer, stats)
/// is the fs manager's (`fs`, a V2Manager on a unified host) in the directory systemd made.
///
/// A scope cannot exist without a process, so the unit is started by the first `addProcess`
/// (the container's init) with the resources `apply` was given; `join`/`create` only check the
/// name. The unit is in `state.systemd` from the start, so whatever records the state before
/// `addProcess` (the container's state.json) lets a later `delete` stop it.
public final class SystemdManager: CgroupManager {
    public private(set) var unit: SystemdUnit
    /// The cgroupfs manager of the unit's directory.
    public let fs: any CgroupManager
    /// Makes the D-Bus client when one is first needed (tests inject a recorder).
    let connect: () throws -> any SystemdClient
    var client_: (any SystemdClient)?
    /// Set by `create`/`join` until `addProcess` starts the unit: only the manager that
    /// creates the container starts it (a manager rebuilt from state just joins processes).
    var startPending = false
    /// The resources `apply` was given, for StartTransientUnit and then the fs manager.
    var pendingResources: Resources?
    /// Properties StartTransientUnit gets after those from the resources: the spec's
    /// `org.systemd.property.*` annotations (`SystemdAnnotations`).
    public var extraProperties: [SystemdProperty] = []
    /// The manager's version once asked (`supported`); `.some(nil)` when it could not be read.
    var version_: Int??

    public init(unit: SystemdUnit, fs: any CgroupManager,
                connect: (() throws -> any SystemdClient)? = nil) {
        self.unit = unit
        self.fs = fs
        self.connect = connect ?? { try SystemdDBusClient.connect(user: unit.user) }
    }

    /// A manager for a new container: the unit from `linux.cgroupsPath` (`slice:prefix:name`),
    /// its cgroup under the system manager's root (or the user manager's `ControlGroup`).
    public static func make(cgroupsPath: String?, containerID: String, user: Bool, layout: CgroupLayout,
                            root: String = defaultCgroupRoot,
                            connect: (() throws -> any SystemdClient)? = nil) throws -> SystemdManager {
        let unit = try SystemdUnit.parse(cgroupsPath: cgroupsPath, containerID: containerID, user: user)
        let connect = connect ?? { try SystemdDBusClient.connect(user: user) }
        var client: (any SystemdClient)?
        var managerRoot = "/"
        if user {
            let c = try wrap("connect to the user's systemd manager", unit) { try connect() }
            managerRoot = try wrap("read the user manager's ControlGroup", unit) { try c.managerControlGroup() }
            client = c
        }
        var state = try CgroupState.resolve(cgroupsPath: try unit.cgroupPath(managerRoot: managerRoot), containerID: containerID,
                                            systemd: false, layout: layout, root: root)
        state.systemd = unit
        let m = SystemdManager(unit: unit, fs: makeCgroupManager(state: stateWithoutUnit(state)), connect: connect)
        m.client_ = client
        return m
    }

    /// The fs manager's view of a state (no unit, so the factory builds a plain manager).
    static func stateWithoutUnit(_ s: CgroupState) -> CgroupState {
        var s = s
        s.systemd = nil
        return s
    }

    static func wrap<T>(_ what: String, _ unit: SystemdUnit, _ body: () throws -> T) throws -> T {
        do { return try body() } catch {
            throw SystemdError(unit: unit.name, action: what, underlying: "\(error)")
        }
    }

    func client() throws -> any SystemdClient {
        if let c = client_ { return c }
        let c = try Self.wrap("connect to \(unit.user ? "the user's" : "the system's") systemd manager", unit) { try connect() }
        client_ = c
        return c
    }

    public var mode: CgroupMode { fs.mode }
    public var state: CgroupState {
        var s = fs.state
        s.systemd = unit
        return s
    }
    public var skipDevices: Bool {
        get { fs.skipDevices }
        set { fs.skipDevices = newValue }
    }
    public var freezeTimeout: Double {
        get { fs.freezeTimeout }
        set { fs.freezeTimeout = newValue }
    }

    public func create() throws { startPending = true }
    /// The unit's directory once systemd made it (exec); none before: the unit is started with
    /// the init's pid in it.
    public var spawnDirectory: String? { startPending ? nil : fs.spawnDirectory }

    /// systemd makes the unit's cgroup; an existing unit of the same name is refused when it is
    /// started (StartTransientUnit's UnitExists), never joined.
    @discardableResult public func join() throws -> Bool {
        startPending = true
        return false
    }

    /// The first call (on the manager that created the container) starts the unit with `pid` in
    /// it, waits for systemd's job, then lets the fs manager write what systemd does not manage;
    /// later calls (exec) put the process in the unit's cgroup.
    public func addProcess(_ pid: pid_t) throws {
        guard startPending else { return try fs.addProcess(pid) }
        let r = pendingResources ?? Resources()
        var properties = unit.startProperties(pid: pid, unified: mode == .unified)
        properties += supported(try SystemdProperties.from(r, unified: mode == .unified, devices: !skipDevices))
        properties += extraProperties
        let c = try client()
        var ours = true
        do {
            try c.startTransientUnit(unit.name, properties: properties)
        } catch let e as DBusError where unit.isSlice && e.remoteName == "org.freedesktop.systemd1.UnitExists" {
            ours = false  // a slice may be shared (a pod's): it is used as it is, and never stopped
            try fs.addProcess(pid)
        } catch {
            var e = SystemdError(unit: unit.name, action: "StartTransientUnit", underlying: "\(error)", properties: properties)
            if unit.user, (error as? DBusError)?.remoteName == "job resources" { e.underlying += Self.userTreeHint }
            throw e
        }
        startPending = false
        unit.started = ours
        // systemd made the directory and holds the process in it: the fs manager only enables
        // controllers where it may (join would take the populated cgroup for a pod's).
        try fs.create()
        try fs.addProcess(pid)
        try fs.apply(r)
    }

    /// Why a user's manager fails a start job with result `resources`: it may not move the
    /// process into its tree.
    static let userTreeHint = "; rootless, the caller must be in the user's delegated tree, as a login session's shell"
        + " is (user@UID.service running, e.g. with `loginctl enable-linger`; `systemd-run --user --scope` puts a"
        + " command in it), or systemd must reach the system bus to move the process"

    /// Checks the conversion now (so a bad value fails before anything starts); the unit gets
    /// the resources when `addProcess` starts it.
    public func apply(_ resources: Resources) throws {
        _ = try SystemdProperties.from(resources, unified: mode == .unified, devices: !skipDevices)
        if startPending { pendingResources = resources } else { try fs.apply(resources) }
    }

    /// SetUnitProperties for what systemd manages, then the files. systemd rewrites device
    /// rules by first denying everything, so the container is frozen meanwhile (as runc does).
    public func update(_ resources: Resources) throws {
        let devices = resources.devices != nil && !skipDevices
        let properties = supported(try SystemdProperties.from(resources, unified: mode == .unified, devices: devices))
        if !properties.isEmpty {
            let c = try client()
            let freeze = devices && !((try? fs.isFrozen()) ?? true)
            if freeze { try fs.freeze() }
            defer { if freeze { try? fs.thaw() } }
            do { try c.setUnitProperties(unit.name, properties: properties) } catch {
                throw SystemdError(unit: unit.name, action: "SetUnitProperties", underlying: "\(error)", properties: properties)
            }
        }
        try fs.update(resources)
    }

    /// `p` without the properties this systemd is too old for (`SystemdProperties.minimumVersion`,
    /// runc's checks): the fs manager writes their files all the same. The version is asked only
    /// when such a property is there; one that cannot be read counts as too old (as runc).
    func supported(_ p: [SystemdProperty]) -> [SystemdProperty] {
        guard p.contains(where: { SystemdProperties.minimumVersion[$0.name] != nil }) else { return p }
        if version_ == nil { version_ = .some(try? client().managerVersion()) }
        return SystemdProperties.supported(p, version: version_!)
    }

    public func freeze() throws { try fs.freeze() }
    public func thaw() throws { try fs.thaw() }
    public func isFrozen() throws -> Bool { try fs.isFrozen() }
    public func pids() throws -> [pid_t] { try fs.pids() }
    public func stats() throws -> CgroupStats { try fs.stats() }
    public func oomKillCount() throws -> UInt64 { try fs.oomKillCount() }

    /// Stops the unit (systemd removes its cgroup) and clears a failed state so the name can
    /// be used again, then removes what the fs manager created. A container whose create did not
    /// start the unit stops nothing: a unit of that name is someone else's (and a create killed
    /// between the start and saving its state leaves a scope that empties, and so stops, when
    /// its init dies).
    public func destroy(force: Bool) throws {
        var firstError: Error?
        if unit.started == true {
            do {
                let c = try client()
                do { try c.stopUnit(unit.name) } catch {
                    throw SystemdError(unit: unit.name, action: "StopUnit", underlying: "\(error)")
                }
                c.resetFailedUnit(unit.name)
            } catch { firstError = error }
        }
        do { try fs.destroy(force: force) } catch { firstError = firstError ?? error }
        if let firstError { throw firstError }
    }
}

/// A refusal or failure of systemd's, naming the unit, the call and, for a refused property,
/// the properties sent.
public struct SystemdError: Error, CustomStringConvertible, Sendable {
    public var unit: String
    public var action: String
    public var underlying: String
    public var properties: [SystemdProperty] = []

    public var description: String {
        var s = "systemd cgroup driver: \(action) \(unit): \(underlying)"
        if underlying.contains(subsequence: "property"), !properties.isEmpty {
            s += " (properties sent: \(properties.map(\.name).joined(separator: ", ")))"
        }
        return s
    }
}
