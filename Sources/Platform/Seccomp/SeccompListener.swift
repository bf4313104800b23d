import BrigLinux
import BrigOCI
import CBrigSeccompShim
import Glibc

/// Hands a seccomp notify fd to the seccomp agent listening at `linux.seccomp.listenerPath`,
/// the way runc does: one message on a Unix stream socket carrying the container process state
/// JSON, with the fd attached as SCM_RIGHTS.
public enum SeccompListener {
    /// Connects to the agent's socket at `listenerPath` and sends `state` (the JSON from
    /// `ContainerProcessState.json` in BrigCore) with `notifyFD` attached. Does not close `notifyFD`.
    /// A missing or dead listener throws an error naming `listenerPath`.
    public static func send(notifyFD: Int32, listenerPath: String, state: [UInt8]) throws(SystemError) {
        let what = "seccomp: send notify fd to listener \(listenerPath)"
        guard !state.isEmpty else { throw SystemError(errno: EINVAL, "\(what): empty state") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(listenerPath.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !pathBytes.isEmpty, pathBytes.count < capacity, !pathBytes.contains(0) else {
            throw SystemError(errno: ENAMETOOLONG, "\(what): not a usable socket path")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: pathBytes)
        }
        let sock = try sys("\(what): socket") { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        defer { close(sock) }
        let length = socklen_t(MemoryLayout<sockaddr_un>.size)
        try sys("failed to connect with seccomp agent at \(listenerPath)") {
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(sock, $0, length) }
            }
        }
        let bytes = state
        var sent = try UnixSocket.sendFD(sock, notifyFD, bytes: bytes, what: "\(what): sendmsg")
        while sent < bytes.count {
            let offset = sent
            sent += try sys("\(what): send") {
                bytes.withUnsafeBytes { Glibc.send(sock, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            }
        }
    }
}
