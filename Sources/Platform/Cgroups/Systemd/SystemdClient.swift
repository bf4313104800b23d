import Glibc

/// One property of a unit, as StartTransientUnit and SetUnitProperties take them (`(sv)`).
public struct SystemdProperty: Equatable, Sendable, CustomStringConvertible {
    public var name: String
    public var value: DBusValue
    public init(_ name: String, _ value: DBusValue) { self.name = name; self.value = value }
    public var dbus: DBusValue { .structure([.string(name), .variant(value)]) }
    public var description: String { "\(name)=\(value)" }
}

/// What the systemd cgroup driver asks of systemd's manager (org.freedesktop.systemd1).
/// `SystemdDBusClient` speaks it over D-Bus; tests substitute a recorder.
public protocol SystemdClient: AnyObject {
    /// StartTransientUnit(name, "replace", properties) and waits for its job to finish.
    func startTransientUnit(_ name: String, properties: [SystemdProperty]) throws
    /// SetUnitProperties(name, runtime = true, properties).
    func setUnitProperties(_ name: String, properties: [SystemdProperty]) throws
    /// StopUnit(name, "replace") and waits for its job; a unit systemd no longer knows is stopped.
    func stopUnit(_ name: String) throws
    /// ResetFailedUnit(name), so the name can be used again; errors are ignored.
    func resetFailedUnit(_ name: String)
    /// The manager's root cgroup (its `ControlGroup` property), e.g.
    /// `/user.slice/user-1000.slice/user@1000.service` for a user's manager.
    func managerControlGroup() throws -> String
    /// The manager's version (its `Version` property's number: 252 for `252.39-1~deb12u2`).
    func managerVersion() throws -> Int
}

/// The systemd manager over D-Bus (the private socket or the bus; `DBusAddress.candidates`).
public final class SystemdDBusClient: SystemdClient {
    static let destination = "org.freedesktop.systemd1"
    static let path = "/org/freedesktop/systemd1"
    static let manager = "org.freedesktop.systemd1.Manager"

    let connection: DBusConnection
    /// How long a job (start, stop) may take.
    public var jobTimeout: Double

    public init(connection: DBusConnection, jobTimeout: Double = 30) throws {
        self.connection = connection
        self.jobTimeout = jobTimeout
        if connection.address.isBus {
            // A bus daemon routes broadcast signals only to matching clients; systemd sends
            // JobRemoved to subscribers. (The private socket gets every signal.)
            try connection.call(destination: "org.freedesktop.DBus", path: "/org/freedesktop/DBus",
                                interface: "org.freedesktop.DBus", member: "AddMatch",
                                body: [.string("type='signal',sender='\(Self.destination)',interface='\(Self.manager)',member='JobRemoved'")])
            try connection.call(destination: Self.destination, path: Self.path, interface: Self.manager, member: "Subscribe")
        }
    }

    /// Connects to the system manager, or with `user` to the calling user's.
    public static func connect(user: Bool, candidates: [DBusAddress]? = nil) throws -> SystemdDBusClient {
        try SystemdDBusClient(connection: try DBusConnection.open(candidates ?? DBusAddress.candidates(user: user)))
    }

    func managerCall(_ member: String, _ body: [DBusValue]) throws -> [DBusValue] {
        try connection.call(destination: connection.address.isBus ? Self.destination : nil, path: Self.path,
                            interface: Self.manager, member: member, body: body)
    }

    /// Runs a call that returns a job path and waits for the job's JobRemoved signal.
    func runJob(_ member: String, unit: String, _ body: [DBusValue]) throws {
        let reply = try managerCall(member, body)
        guard case let .objectPath(job)? = reply.first else {
            throw DBusError.broken(address: connection.address.path, reason: "\(member) returned \(reply) instead of a job path")
        }
        // JobRemoved(u id, o job, s unit, s result)
        let signal = try connection.nextSignal(within: jobTimeout, what: "\(member) \(unit) (waiting for its job)") { m in
            m.member == "JobRemoved" && m.interface == Self.manager && m.body.count == 4 && m.body[1] == .objectPath(job)
        }
        let result = signal.body[3].text ?? ""
        guard result == "done" else {
            throw DBusError.remote(call: "\(member) \(unit)", name: "job \(result)",
                                   message: "systemd's job for \(unit) ended with result \"\(result)\" (see `journalctl -u \(unit)`)")
        }
    }

    public func startTransientUnit(_ name: String, properties: [SystemdProperty]) throws {
        try runJob("StartTransientUnit", unit: name,
                   [.string(name), .string("replace"), .array("(sv)", properties.map(\.dbus)), .array("(sa(sv))", [])])
    }

    public func setUnitProperties(_ name: String, properties: [SystemdProperty]) throws {
        try managerCall("SetUnitProperties", [.string(name), .bool(true), .array("(sv)", properties.map(\.dbus))])
    }

    public func stopUnit(_ name: String) throws {
        do {
            try runJob("StopUnit", unit: name, [.string(name), .string("replace")])
        } catch let e as DBusError where e.remoteName == "org.freedesktop.systemd1.NoSuchUnit" {
            return
        }
    }

    public func resetFailedUnit(_ name: String) {
        _ = try? managerCall("ResetFailedUnit", [.string(name)])
    }

    /// A string property of the manager.
    func managerProperty(_ name: String) throws -> String {
        let reply = try connection.call(destination: connection.address.isBus ? Self.destination : nil, path: Self.path,
                                        interface: "org.freedesktop.DBus.Properties", member: "Get",
                                        body: [.string(Self.manager), .string(name)])
        guard case let .variant(.string(value))? = reply.first else {
            throw DBusError.broken(address: connection.address.path, reason: "\(name) is \(reply)")
        }
        return value
    }

    public func managerControlGroup() throws -> String { try managerProperty("ControlGroup") }

    public func managerVersion() throws -> Int {
        let v = try managerProperty("Version")
        guard let n = SystemdProperties.parseVersion(v) else {
            throw DBusError.broken(address: connection.address.path, reason: "Version \"\(v)\" does not start with a number")
        }
        return n
    }
}
