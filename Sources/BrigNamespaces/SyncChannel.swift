import BrigLinux
import FoundationEssentials
import Glibc

/// Messages between the parent (`brig create`) and the container's init over a SOCK_SEQPACKET
/// socketpair: one JSON message per packet, typed verbs per direction.
public enum SyncMessage: Codable, Sendable {
    case plan(LaunchPlan)          // parent → init
    case mapUser                   // init → parent: write my uid/gid maps
    case mapped                    // parent → init
    case childPid(Int32)           // init → parent: the container process's host pid
    case runtimeHooks              // container → parent: run prestart/createRuntime hooks now
    case hooksDone(String)         // parent → container: state JSON for createContainer hooks
    case ready                     // container → parent: parked before exec
    case error(String)             // either way: setup failed, with the reason
}

public struct SyncChannel {
    public let fd: Int32
    public init(fd: Int32) { self.fd = fd }

    public func send(_ m: SyncMessage) throws {
        try UnixSocket.send(fd, Array(try JSONEncoder().encode(m)))
    }

    /// Receives one message; nil when the peer closed the channel.
    public func receive() throws -> SyncMessage? {
        let bytes = try UnixSocket.receive(fd, max: 4 << 20)
        if bytes.isEmpty { return nil }
        return try JSONDecoder().decode(SyncMessage.self, from: Data(bytes))
    }
}
