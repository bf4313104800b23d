import BrigLinux
import Glibc

/// What went wrong talking to systemd over D-Bus; every case names the socket or the call.
public enum DBusError: Error, CustomStringConvertible, Equatable, Sendable {
    /// No socket could be reached (each address tried, with why).
    case unreachable(tried: [String])
    /// The server refused the EXTERNAL authentication or answered something unexpected.
    case auth(address: String, reply: String)
    /// An error reply: `name` (`org.freedesktop.systemd1.NoSuchUnit`) and its message.
    case remote(call: String, name: String, message: String)
    /// No answer within the time allowed.
    case timeout(call: String, seconds: Double)
    /// The peer closed the connection, or sent bytes that are no D-Bus message.
    case broken(address: String, reason: String)

    public var description: String {
        switch self {
        case let .unreachable(tried): return "cannot connect to systemd over D-Bus: " + tried.joined(separator: "; ")
        case let .auth(address, reply): return "D-Bus authentication on \(address) failed: \(reply.debugDescription)"
        case let .remote(call, name, message): return "\(call): \(name): \(message)"
        case let .timeout(call, seconds): return "\(call): no answer from systemd within \(Int(seconds)) s"
        case let .broken(address, reason): return "D-Bus connection \(address): \(reason)"
        }
    }

    /// The D-Bus error name of a `.remote` error.
    public var remoteName: String? { if case let .remote(_, name, _) = self { return name }; return nil }
}

/// A socket to try: a message bus (needs Hello and match rules) or systemd's private socket
/// (peer to peer with the manager, no bus daemon needed).
public struct DBusAddress: Equatable, Sendable {
    public var path: String
    public var isBus: Bool
    public init(path: String, isBus: Bool) { self.path = path; self.isBus = isBus }

    /// The unix `path=` of a D-Bus address list (`unix:path=/run/user/1000/bus,guid=…;…`).
    public static func parse(_ list: String) -> [DBusAddress] {
        list.split(separator: ";").compactMap { entry in
            guard entry.hasPrefix("unix:") else { return nil }
            for kv in entry.dropFirst(5).split(separator: ",") where kv.hasPrefix("path=") {
                return DBusAddress(path: unescape(kv.dropFirst(5)), isBus: true)
            }
            return nil
        }
    }

    /// D-Bus address values escape bytes as `%XX`.
    static func unescape(_ s: Substring) -> String {
        var out: [UInt8] = []
        var it = Array(s.utf8)[...]
        while let c = it.popFirst() {
            if c == UInt8(ascii: "%"), it.count >= 2, let v = UInt8(String(decoding: it.prefix(2), as: UTF8.self), radix: 16) {
                out.append(v); it = it.dropFirst(2)
            } else {
                out.append(c)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Where systemd's manager is reached, in order, as systemctl tries them: the private socket
    /// first (no bus daemon needed), then the bus. `user`: the calling user's manager.
    public static func candidates(user: Bool, env: (String) -> String? = { getenv($0).map { String(cString: $0) } }) -> [DBusAddress] {
        if user {
            var out: [DBusAddress] = []
            if let rt = env("XDG_RUNTIME_DIR"), !rt.isEmpty {
                out.append(DBusAddress(path: rt + "/systemd/private", isBus: false))
            }
            out += parse(env("DBUS_SESSION_BUS_ADDRESS") ?? "")
            if let rt = env("XDG_RUNTIME_DIR"), !rt.isEmpty { out.append(DBusAddress(path: rt + "/bus", isBus: true)) }
            return out
        }
        return [DBusAddress(path: "/run/systemd/private", isBus: false)]
            + parse(env("DBUS_SYSTEM_BUS_ADDRESS") ?? "")
            + [DBusAddress(path: "/run/dbus/system_bus_socket", isBus: true)]
    }
}

/// A blocking D-Bus client connection on a Unix socket: EXTERNAL authentication, method calls
/// (messages that are not the awaited reply are kept for `nextSignal`), signals.
public final class DBusConnection {
    public let address: DBusAddress
    let fd: Int32
    var serial: UInt32 = 0
    var buffer: [UInt8] = []
    /// Signals received while waiting for a reply, oldest first.
    var queued: [DBusMessage] = []
    /// How long a call waits for its reply (seconds).
    public var timeout: Double
    /// With BRIG_DEBUG_DBUS set: every message sent and received, on stderr.
    let trace = getenv("BRIG_DEBUG_DBUS") != nil

    init(fd: Int32, address: DBusAddress, timeout: Double) {
        self.fd = fd; self.address = address; self.timeout = timeout
    }

    deinit { close(fd) }

    /// Connects to the first address that answers and authenticates; on a bus, says Hello.
    public static func open(_ candidates: [DBusAddress], timeout: Double = 30) throws -> DBusConnection {
        var tried: [String] = []
        for a in candidates {
            let fd: Int32
            do { fd = try UnixSocket.connect(a.path) } catch {
                tried.append("\(a.path): \(String(cString: strerror(error.errno)))")
                continue
            }
            let c = DBusConnection(fd: fd, address: a, timeout: timeout)
            try c.authenticate()
            if a.isBus {
                _ = try c.call(destination: "org.freedesktop.DBus", path: "/org/freedesktop/DBus",
                               interface: "org.freedesktop.DBus", member: "Hello")
            }
            return c
        }
        throw DBusError.unreachable(tried: tried.isEmpty ? ["no address to try"] : tried)
    }

    /// EXTERNAL authentication with BEGIN pipelined, as sd-bus clients send it. BEGIN must not
    /// share a read with the first message: systemd 252's server (sd-bus) leaves bytes that
    /// arrive together with BEGIN unparsed until more data comes, so a first call written right
    /// after a separate BEGIN hung without an answer (seen with StopUnit in the VM test host).
    func authenticate() throws {
        let uid = Array(String(geteuid()).utf8).map { String($0, radix: 16) }.joined()
        try write(Array("\0AUTH EXTERNAL \(uid)\r\nBEGIN\r\n".utf8))
        let reply = try readLine()
        guard reply.hasPrefix("OK ") else { throw DBusError.auth(address: address.path, reply: reply) }
        if trace { note("authenticated on \(address.path)") }
    }

    func note(_ s: String) {
        fputs("dbus \(Int(Self.now() * 1000) % 100_000) \(s)\n", stderr)
    }

    func readLine() throws -> String {
        let deadline = Self.now() + timeout
        while true {
            if let i = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[..<i], as: UTF8.self)
                buffer.removeSubrange(...i)
                return line.hasSuffix("\r") ? String(line.dropLast()) : line
            }
            try fill(until: deadline, what: "authentication")
        }
    }

    func write(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw DBusError.broken(address: address.path, reason: "send: \(String(cString: strerror(errno)))")
            }
            sent += n
        }
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Reads what is available into `buffer`, waiting until `deadline`.
    func fill(until deadline: Double, what: String) throws {
        let left = deadline - Self.now()
        if left <= 0 {
            throw DBusError.timeout(call: what + (refused.isEmpty ? "" : " (systemd called us: \(refused.joined(separator: ", ")))"), seconds: timeout)
        }
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let r = poll(&p, 1, Int32(min(left * 1000, 60_000)) + 1)
        if r < 0 && errno != EINTR { throw DBusError.broken(address: address.path, reason: "poll: \(String(cString: strerror(errno)))") }
        if r <= 0 { return }
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if trace { note("recv \(n) bytes") }
        if n < 0 {
            if errno == EINTR || errno == EAGAIN { return }
            throw DBusError.broken(address: address.path, reason: "recv: \(String(cString: strerror(errno)))")
        }
        if n == 0 { throw DBusError.broken(address: address.path, reason: "closed by systemd during \(what)") }
        buffer += chunk[0..<n]
    }

    /// The next message from the socket.
    func receive(until deadline: Double, what: String) throws -> DBusMessage {
        while true {
            do {
                if let total = try DBusMessage.length(ofMessageStartingWith: buffer[...]), buffer.count >= total {
                    let bytes = Array(buffer[..<total])
                    buffer.removeFirst(total)
                    let m = try DBusMessage.decode(bytes)
                    if trace { note("<- \(m.kind) #\(m.serial) re \(m.replySerial ?? 0) \(m.member ?? m.errorName ?? "")") }
                    return m
                }
            } catch let e as DBusFormatError {
                throw DBusError.broken(address: address.path, reason: e.description)
            }
            try fill(until: deadline, what: what)
        }
    }

    /// Calls a method and returns the reply's body; an error reply throws `.remote`.
    @discardableResult
    public func call(destination: String?, path: String, interface: String, member: String,
                     body: [DBusValue] = []) throws -> [DBusValue] {
        serial += 1
        let msg = DBusMessage.call(serial: serial, destination: destination, path: path, interface: interface,
                                   member: member, body: body)
        if trace { note("-> #\(msg.serial) \(member)") }
        do { try write(try msg.encode()) } catch let e as DBusFormatError {
            throw DBusError.broken(address: address.path, reason: "\(member): \(e)")
        }
        let deadline = Self.now() + timeout
        while true {
            let m = try receive(until: deadline, what: member)
            if m.replySerial == msg.serial && (m.kind == .methodReturn || m.kind == .error) {
                if m.kind == .error {
                    throw DBusError.remote(call: member, name: m.errorName ?? "error",
                                           message: (m.body.first?.text ?? "")
                                               + (refused.isEmpty ? "" : " (systemd called us: \(refused.joined(separator: ", ")))"))
                }
                return m.body
            }
            if m.kind == .signal { queued.append(m) }
            if m.kind == .methodCall { try refuse(m) }
        }
    }

    /// Method calls the peer makes to us (systemd asking polkit on a direct connection when it
    /// does not trust our credentials) get an error reply, so the peer fails the call at once
    /// instead of waiting; they are remembered for the error that follows.
    var refused: [String] = []

    func refuse(_ m: DBusMessage) throws {
        refused.append("\(m.interface ?? "").\(m.member ?? "") for \(m.destination ?? "us")")
        guard m.flags & 0x1 == 0 else { return }  // NO_REPLY_EXPECTED
        serial += 1
        var reply = DBusMessage(kind: .error, serial: serial, body: [.string("brig's systemd driver does not serve \(m.interface ?? "") calls")])
        reply.errorName = "org.freedesktop.DBus.Error.UnknownMethod"
        reply.replySerial = m.serial
        reply.destination = m.sender
        try write(try reply.encode())
    }

    /// The next signal (queued ones first) that `matches`, waiting at most `seconds`.
    public func nextSignal(within seconds: Double, what: String, _ matches: (DBusMessage) -> Bool) throws -> DBusMessage {
        if let i = queued.firstIndex(where: matches) { return queued.remove(at: i) }
        queued.removeAll()
        let deadline = Self.now() + seconds
        while true {
            let m: DBusMessage
            do { m = try receive(until: deadline, what: what) } catch DBusError.timeout {
                throw DBusError.timeout(call: what, seconds: seconds)
            }
            if m.kind == .signal && matches(m) { return m }
            if m.kind == .methodCall { try refuse(m) }
        }
    }
}
