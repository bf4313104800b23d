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
        let deadline = monotonicNow() + timeout
        var delay: useconds_t = 500
        while true {
            do { return try connectOnce() } catch {
                if monotonicNow() >= deadline { throw error }
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

    /// Reads one `\n`-terminated line byte by byte (nothing past it is consumed).
    static func readLine(_ fd: Int32, max: Int) throws(RuntimeError) -> String {
        var bytes: [UInt8] = []
        var b: UInt8 = 0
        while bytes.count < max {
            let n = read(fd, &b, 1)
            if n < 0 && errno == EINTR { continue }
            guard n == 1 else { throw RuntimeError(.system, "the VMM closed the connection (no guest listener)") }
            if b == UInt8(ascii: "\n") { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(b)
        }
        throw RuntimeError(.system, "reply line too long")
    }
}

func monotonicNow() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
