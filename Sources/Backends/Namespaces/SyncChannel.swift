import BrigLinux
import CBrigShim
import Glibc

/// Messages between the parent (`brig create`) and the container's init over a SOCK_SEQPACKET
/// socketpair: one message per packet in the binary form of Wire.swift, typed verbs per direction.
public enum SyncMessage: Sendable {
    case plan(LaunchPlan)          // parent → init
    case placed                    // parent → init: you are in the container's cgroups, go on
    case mapUser                   // init → parent: write my uid/gid maps
    case mapped                    // parent → init
    case childPid(Int32)           // init → parent: the container process's host pid
    case runtimeHooks              // container → parent: run prestart/createRuntime hooks now
    case hooksDone(String)         // parent → container: state JSON for createContainer hooks
    case ready                     // container → parent: parked before exec
    case seccompFD                 // container → parent: the seccomp notify fd rides along (SCM_RIGHTS)
    case error(String)             // either way: setup failed, with the reason
}

public struct SyncChannel {
    public let fd: Int32
    /// The largest message either side accepts (a plan with many mounts is a few KiB).
    static let maxMessage = 4 << 20
    public init(fd: Int32) { self.fd = fd }

    public func send(_ m: SyncMessage) throws {
        try UnixSocket.send(fd, m.wire)
    }

    /// Receives one message; nil when the peer closed the channel.
    public func receive() throws -> SyncMessage? {
        try receiveWithFD()?.0
    }

    /// Receives one message and the fd attached to it, if any (-1).
    public func receiveWithFD() throws -> (SyncMessage, Int32)? {
        // Peek at the packet's size first (SOCK_SEQPACKET: MSG_TRUNC reports the whole length)
        // and receive into a buffer of exactly that size: a fixed 4 MiB buffer cost ~1000 page
        // faults and a memset per message, the largest single cost of a create.
        let size = try sys("recv (peek)") { recv(fd, nil, 0, Int32(MSG_PEEK | MSG_TRUNC)) }
        guard size <= SyncChannel.maxMessage else { throw InitError("sync message of \(size) bytes (limit \(SyncChannel.maxMessage))") }
        var passed: Int32 = -1
        var n = 0
        let buf = try [UInt8](unsafeUninitializedCapacity: max(size, 1)) { b, count in
            n = try sys("recv") { brig_recv_fd(fd, &passed, b.baseAddress, b.count) }
            count = n
        }
        if n == 0 { if passed >= 0 { close(passed) }; return nil }
        do { return (try SyncMessage(wire: buf), passed) } catch { if passed >= 0 { close(passed) }; throw error }
    }

    /// Sends a message with an fd attached.
    public func send(_ m: SyncMessage, fd passed: Int32) throws {
        _ = try UnixSocket.sendFD(fd, passed, bytes: m.wire, what: "send fd over socket")
    }
}
