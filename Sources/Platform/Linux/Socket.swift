import CBrigShim
import Glibc

/// Unix sockets: the parent↔init sync channel (SOCK_SEQPACKET, one message per send) and
/// path sockets (console socket, start socket), all O_CLOEXEC.
public enum UnixSocket {
    public static func pair(type: Int32 = Int32(SOCK_SEQPACKET.rawValue)) throws(SystemError) -> (Int32, Int32) {
        var fds: [Int32] = [-1, -1]
        try sys("socketpair") { socketpair(AF_UNIX, type | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) }
        return (fds[0], fds[1])
    }

    static func withAddress<T>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) throws(SystemError) -> T {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let cap = MemoryLayout.size(ofValue: addr.sun_path)
        guard bytes.count < cap else { throw SystemError(errno: ENAMETOOLONG, "socket path \(path)") }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
            raw[bytes.count] = 0
        }
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }

    /// Connects to a socket path. Long paths are reached through /proc/self/fd of their directory.
    public static func connect(_ path: String, type: Int32 = Int32(SOCK_STREAM.rawValue)) throws(SystemError) -> Int32 {
        let fd = try sys("socket") { socket(AF_UNIX, type | Int32(SOCK_CLOEXEC.rawValue), 0) }
        do {
            try shortened(path) { (p: String) throws(SystemError) in
                let r = try withAddress(p) { Glibc.connect(fd, $0, $1) }
                if r != 0 { throw SystemError.last("connect to \(path)") }
            }
        } catch { close(fd); throw error }
        return fd
    }

    /// Binds and listens on a socket path (removing a stale socket file first).
    public static func listen(_ path: String, type: Int32 = Int32(SOCK_STREAM.rawValue)) throws(SystemError) -> Int32 {
        let fd = try sys("socket") { socket(AF_UNIX, type | Int32(SOCK_CLOEXEC.rawValue), 0) }
        do {
            unlink(path)
            try shortened(path) { (p: String) throws(SystemError) in
                let r = try withAddress(p) { bind(fd, $0, $1) }
                if r != 0 { throw SystemError.last("bind \(path)") }
            }
            try sys("listen on \(path)") { Glibc.listen(fd, 16) }
        } catch { close(fd); throw error }
        return fd
    }

    static func shortened(_ path: String, _ body: (String) throws(SystemError) -> Void) throws(SystemError) {
        if path.utf8.count < 100 { return try body(path) }
        let slash = path.lastIndex(of: "/") ?? path.startIndex
        let dir = String(path[..<slash]), name = String(path[path.index(after: slash)...])
        let dfd = try Files.open(dir.isEmpty ? "/" : dir, Int32(BRIG_O_PATH) | O_DIRECTORY)
        defer { close(dfd) }
        try body("/proc/self/fd/\(dfd)/\(name)")
    }

    public static func send(_ fd: Int32, _ bytes: [UInt8]) throws(SystemError) {
        _ = try sys("send") { bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } }
    }

    /// Receives one message (SEQPACKET) or a chunk (STREAM); empty means the peer closed.
    public static func receive(_ fd: Int32, max: Int = 1 << 20) throws(SystemError) -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: max)
        let n = try sys("recv") { buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) } }
        return Array(buf[0..<n])
    }

    public static func sendFD(_ sock: Int32, _ fd: Int32, _ payload: String) throws(SystemError) {
        _ = try sendFD(sock, fd, bytes: Array(payload.utf8), what: "send fd over socket")
    }

    /// One message with `fd` attached; returns how many of `bytes` went (a stream socket may
    /// take fewer: the caller sends the rest).
    public static func sendFD(_ sock: Int32, _ fd: Int32, bytes: [UInt8], what: @autoclosure () -> String) throws(SystemError) -> Int {
        try sys(what()) { bytes.withUnsafeBytes { brig_send_fd(sock, fd, $0.baseAddress, $0.count) } }
    }

    public static func receiveFD(_ sock: Int32) throws(SystemError) -> (fd: Int32, payload: String) {
        let (fd, bytes) = try receiveWithFD(sock, max: 4096)
        return (fd, String(decoding: bytes, as: UTF8.self))
    }

    /// One recvmsg of at most `max` bytes, with the fd that came along (-1 if none;
    /// close-on-exec). Empty bytes: the peer closed.
    public static func receiveWithFD(_ sock: Int32, max: Int) throws(SystemError) -> (fd: Int32, bytes: [UInt8]) {
        var buf = [UInt8](repeating: 0, count: max)
        var fd: Int32 = -1
        let n = try sys("receive fd") { buf.withUnsafeMutableBytes { brig_recv_fd(sock, &fd, $0.baseAddress, $0.count) } }
        return (fd, Array(buf[0..<n]))
    }
}
