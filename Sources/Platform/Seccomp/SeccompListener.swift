import BrigLinux
import BrigOCI
import CBrigSeccompShim
import FoundationEssentials
import Glibc

/// Hands a seccomp notify fd to the seccomp agent listening at `linux.seccomp.listenerPath`,
/// the way runc does: one message on a Unix stream socket carrying the container process state
/// JSON, with the fd attached as SCM_RIGHTS.
public enum SeccompListener {
    /// The payload the agent receives: runtime-spec `ContainerProcessState`.
    public struct ProcessState: Codable, Sendable, Equatable {
        public var ociVersion: String
        /// Names of the passed fds, in order: always `["seccompFd"]`.
        public var fds: [String]
        public var pid: Int32
        public var metadata: String?
        public var state: ContainerState

        public init(state: ContainerState, pid: Int32, metadata: String?) {
            self.ociVersion = state.ociVersion; self.fds = ["seccompFd"]; self.pid = pid
            self.metadata = (metadata?.isEmpty ?? true) ? nil : metadata; self.state = state
        }
    }

    /// Encodes the `ContainerProcessState` JSON for `send`: `pid` is the container process whose
    /// filter the fd belongs to (the init pid, as in runc); `metadata` is `listenerMetadata`.
    public static func processState(state: ContainerState, pid: Int32? = nil, metadata: String?) -> Data {
        let payload = ProcessState(state: state, pid: pid ?? state.pid, metadata: metadata)
        do {
            return try JSONEncoder().encode(payload)
        } catch {
            // Only strings and integers: JSONEncoder cannot fail on these.
            preconditionFailure("encoding ContainerProcessState failed: \(error)")
        }
    }

    /// Connects to the agent's socket at `listenerPath` and sends `state` (the JSON from
    /// `processState`) with `notifyFD` attached. Does not close `notifyFD`.
    /// A missing or dead listener throws an error naming `listenerPath`.
    public static func send(notifyFD: Int32, listenerPath: String, state: Data) throws(SystemError) {
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
        let bytes = [UInt8](state)
        var sent = try UnixSocket.sendFD(sock, notifyFD, bytes: bytes, what: "\(what): sendmsg")
        while sent < bytes.count {
            let offset = sent
            sent += try sys("\(what): send") {
                bytes.withUnsafeBytes { Glibc.send(sock, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            }
        }
    }
}
