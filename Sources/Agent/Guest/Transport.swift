import BrigLinux
import CBrigAgentInit
import Glibc

/// How the host reaches the agent: AF_VSOCK (many connections) or a serial line (one).
/// Chosen by `brig.transport=vsock[:PORT]|serial:/dev/ttyS1` on the kernel command line.
public enum Transport: Equatable, Sendable {
    case vsock(port: UInt32)
    case serial(path: String)

    public static let defaultVsockPort: UInt32 = 1024

    /// Parses the `brig.transport` value; nil or empty means vsock on the default port.
    public static func parse(_ value: String?) throws(SystemError) -> Transport {
        guard let v = value, !v.isEmpty, v != "vsock" else { return .vsock(port: defaultVsockPort) }
        if v.hasPrefix("serial:") {
            let path = String(v.dropFirst("serial:".count))
            if path.hasPrefix("/") { return .serial(path: path) }
        } else if v.hasPrefix("vsock:"), let port = UInt32(v.dropFirst("vsock:".count)) {
            return .vsock(port: port)
        }
        throw SystemError(errno: EINVAL, "brig.transport=\(v): want vsock, vsock:PORT or serial:/dev/PATH")
    }

    /// The transport named on the running kernel's command line.
    public static func fromCmdline() throws(SystemError) -> Transport {
        try parse(GuestInit.cmdline()["brig.transport"])
    }

    /// An opened transport: one connection (serial line) or a socket that accepts many (vsock).
    public enum Endpoint: Equatable, Sendable {
        case connection(Int32)
        case listener(Int32)
    }

    /// Opens the transport (serial: raw mode; vsock: listening on its port).
    public func open() throws(SystemError) -> Endpoint {
        switch self {
        case .serial(let path):
            let fd = try Self.openSerial(path)
            GuestInit.log("serving on \(path)")
            return .connection(fd)
        case .vsock(let port):
            let fd = try sys("listen on vsock port \(port)") { brig_vsock_listen(port, 16) }
            GuestInit.log("listening on vsock port \(port)")
            return .listener(fd)
        }
    }

    /// Opens a tty raw (no echo, no line discipline): the frames are binary.
    static func openSerial(_ path: String) throws(SystemError) -> Int32 {
        let fd = try Files.open(path, O_RDWR | O_NOCTTY | O_CLOEXEC)
        var t = termios()
        try sys("tcgetattr \(path)") { tcgetattr(fd, &t) }
        cfmakeraw(&t)
        try sys("tcsetattr \(path)") { tcsetattr(fd, TCSANOW, &t) }
        // Whatever arrived before the line was raw went through echo and canonical mode: drop it.
        // The host speaks after the console shows "serving on PATH".
        try sys("tcflush \(path)") { tcflush(fd, TCIOFLUSH) }
        return fd
    }
}
