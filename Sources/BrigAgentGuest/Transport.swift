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

    /// Opens the transport and hands each connection to `handle` (which owns the fd). Serial:
    /// one connection, returns when `handle` does. Vsock: accepts forever, each connection on
    /// its own thread.
    public func serve(_ handle: @escaping @Sendable (Int32) -> Void) throws(SystemError) {
        switch self {
        case .serial(let path):
            let fd = try Self.openSerial(path)
            GuestInit.log("serving on \(path)")
            handle(fd)
        case .vsock(let port):
            let listener = try sys("listen on vsock port \(port)") { brig_vsock_listen(port, 16) }
            GuestInit.log("listening on vsock port \(port)")
            while true {
                let fd = try sys("accept on vsock port \(port)") { brig_vsock_accept(listener) }
                try Self.detach { handle(fd) }
            }
        }
    }

    /// Opens a tty raw (no echo, no line discipline): the frames are binary.
    static func openSerial(_ path: String) throws(SystemError) -> Int32 {
        let fd = try Files.open(path, O_RDWR | O_NOCTTY | O_CLOEXEC)
        var t = termios()
        try sys("tcgetattr \(path)") { tcgetattr(fd, &t) }
        cfmakeraw(&t)
        try sys("tcsetattr \(path)") { tcsetattr(fd, TCSANOW, &t) }
        return fd
    }

    final class Body { let run: () -> Void; init(_ run: @escaping () -> Void) { self.run = run } }

    /// Runs `body` on a detached thread.
    static func detach(_ body: @escaping () -> Void) throws(SystemError) {
        var attr = pthread_attr_t()
        pthread_attr_init(&attr)
        defer { pthread_attr_destroy(&attr) }
        pthread_attr_setdetachstate(&attr, Int32(PTHREAD_CREATE_DETACHED))
        var thread = pthread_t()
        let box = Unmanaged.passRetained(Body(body)).toOpaque()
        let rc = pthread_create(&thread, &attr, { p in
            Unmanaged<Body>.fromOpaque(p!).takeRetainedValue().run()
            return nil
        }, box)
        if rc != 0 {
            Unmanaged<Body>.fromOpaque(box).release()
            throw SystemError(errno: rc, "pthread_create for a vsock connection")
        }
    }
}
