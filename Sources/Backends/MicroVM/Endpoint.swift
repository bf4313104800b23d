import BrigCore
import BrigLinux
import Glibc

/// How a host process reaches a container's agent.
public enum AgentEndpoint: Codable, Sendable, Equatable {
    /// Firecracker's hybrid vsock: connect to the VMM's Unix socket, send `CONNECT <port>\n`,
    /// read `OK <hostport>\n`, then the stream is the guest connection.
    case vsock(uds: String, port: UInt32)
    /// The agent running as a host process (the test transport) listening on a Unix socket.
    case unix(path: String)

    public static let agentPort: UInt32 = 1024

    /// One connection to an agent that is up (start, kill, exec…): retried for `timeout` seconds,
    /// the handshake included, unless `gone` says why waiting is pointless (the VM stopped).
    /// Boot uses `AgentWaiter` with the container's deadline.
    func session(timeout: Double, gone: @escaping () -> String? = { nil }) throws(RuntimeError) -> AgentSession {
        var w = AgentWaiter(timeout: timeout, connect: { (t: Double) throws(ConnectFailure) -> Int32 in try connectOnce(timeout: t) })
        w.gone = gone
        return try w.session()
    }

    /// One attempt. A failure that waiting can cure (nothing listens yet, the VMM's socket is not
    /// there yet, the guest reset the connection or did not answer in `timeout` seconds) is
    /// `retryable`; anything else is not.
    func connectOnce(timeout: Double) throws(ConnectFailure) -> Int32 {
        switch self {
        case let .unix(path):
            do { return try UnixSocket.connect(path) } catch {
                throw ConnectFailure("connecting to the agent at \(path): \(error)", retryable: Self.notListeningYet(error.errno))
            }
        case let .vsock(uds, port):
            let fd: Int32
            do { fd = try UnixSocket.connect(uds) } catch {
                throw ConnectFailure("connecting to the VM's vsock socket \(uds): \(error)", retryable: Self.notListeningYet(error.errno))
            }
            let what = "vsock CONNECT \(port) via \(uds)"
            do {
                try Files.writeAll(fd: fd, Array("CONNECT \(port)\n".utf8))
            } catch {
                close(fd)
                throw ConnectFailure("\(what): \(error)", retryable: error.errno == EPIPE || error.errno == ECONNRESET)
            }
            // The VMM answers once the guest accepted or refused; a guest whose vsock driver is
            // not up yet has not even seen the request.
            guard Self.readable(fd, within: timeout) else {
                close(fd)
                throw ConnectFailure("\(what): no answer from the guest within \(Self.seconds(timeout))", retryable: true)
            }
            switch Files.readLine(fd: fd, max: 64) {
            case let (line, .newline) where line.hasPrefix("OK "):
                return fd
            case let (line, .newline):
                close(fd)
                throw ConnectFailure("\(what): unexpected reply \"\(line)\"", retryable: false)
            case (_, .limit):
                close(fd)
                throw ConnectFailure("\(what): reply line too long", retryable: false)
            case (_, .eof):
                close(fd)
                throw ConnectFailure("\(what): the VMM closed the connection (no guest listener)", retryable: true)
            }
        }
    }

    /// The socket file is not there yet, or nobody accepts on it yet.
    static func notListeningYet(_ e: Int32) -> Bool { e == ENOENT || e == ECONNREFUSED || e == EAGAIN }

    static func readable(_ fd: Int32, within seconds: Double) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let deadline = monotonicSeconds() + seconds
        while true {
            let ms = Int32(max(0, min(Double(Int32.max), (deadline - monotonicSeconds()) * 1000)))
            let r = poll(&p, 1, ms)
            if r > 0 { return true }
            if r == 0 || errno != EINTR { return false }
        }
    }

    static func seconds(_ s: Double) -> String {
        s == s.rounded() ? "\(Int(s)) s" : "\((s * 10).rounded() / 10) s"
    }
}
