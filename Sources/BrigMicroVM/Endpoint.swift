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

    /// One connection to the agent, retried until `timeout` seconds while it is coming up.
    public func connect(timeout: Double = 0) throws(RuntimeError) -> Int32 {
        let deadline = monotonicSeconds() + timeout
        var delay: useconds_t = 500
        while true {
            do { return try connectOnce() } catch {
                if monotonicSeconds() >= deadline { throw error }
                usleep(delay)
                delay = min(delay * 2, 20_000)
            }
        }
    }

    func connectOnce() throws(RuntimeError) -> Int32 {
        switch self {
        case let .unix(path):
            do { return try UnixSocket.connect(path) } catch { throw RuntimeError(.system, "connecting to the agent at \(path): \(error)") }
        case let .vsock(uds, port):
            let fd: Int32
            do { fd = try UnixSocket.connect(uds) } catch { throw RuntimeError(.system, "connecting to the VM's vsock socket \(uds): \(error)") }
            do {
                try Files.writeAll(fd: fd, Array("CONNECT \(port)\n".utf8))
                let line = try Self.readLine(fd, max: 64)
                guard line.hasPrefix("OK ") else { throw RuntimeError(.system, "vsock CONNECT \(port): unexpected reply \"\(line)\"") }
                return fd
            } catch {
                close(fd)
                throw RuntimeError.wrap(error, "vsock CONNECT \(port) via \(uds)")
            }
        }
    }

    /// Reads the VMM's one-line reply (nothing past it is consumed).
    static func readLine(_ fd: Int32, max: Int) throws(RuntimeError) -> String {
        switch Files.readLine(fd: fd, max: max) {
        case let (text, .newline): return text
        case (_, .limit): throw RuntimeError(.system, "reply line too long")
        case (_, .eof): throw RuntimeError(.system, "the VMM closed the connection (no guest listener)")
        }
    }
}
