#if canImport(Glibc)
import Glibc
#endif
import BrigLinux
import Synchronization

/// The VMM's vsock backend, Firecracker's hybrid model: guest connections map to Unix sockets.
/// Host-initiated: a client connects to `udsPath` and writes `CONNECT <port>\n`; once the
/// guest accepts, it reads `OK <hostport>\n` and the socket carries the stream.
/// Guest-initiated: a guest connect to CID 2 port P is forwarded to the Unix socket
/// `<udsPath>_<P>`.
///
/// The protocol is `VsockConnectionTable`'s; this type owns the sockets. Every host socket call
/// (accept, connect, read, write, shutdown, close) happens on the muxer's own thread (`serve`,
/// one `pollHost` round at a time): `send` and `receive`, which run on a vCPU's exit path,
/// only change the table and wake that thread, which calls `deliver` when rx packets wait.
public final class VsockMuxer: VsockBackend, @unchecked Sendable {
    public let guestCID: UInt64
    public let udsPath: String
    public let limits: VsockLimits

    private struct State {
        var table: VsockConnectionTable<Int32>
        /// Accepted clients still sending their CONNECT line.
        var pending: [Int32: [UInt8]] = [:]
        /// Host ends of connections the guest closed, with what it sent that they have not taken
        /// yet; each is closed once that is written (or it breaks).
        var draining: [Int32: [UInt8]] = [:]
        var closed = false
    }
    private let state: Mutex<State>
    private let listenFD: Int32
    private let wakeRead: Int32, wakeWrite: Int32

    /// Listens at `udsPath` (mode 0600; a stale socket is removed).
    public init(guestCID: UInt64, udsPath: String, limits: VsockLimits = VsockLimits()) throws(VsockError) {
        try VirtioVsock.check(guestCID: guestCID)
        guard udsPath.utf8.count + 12 < MemoryLayout<sockaddr_un>.size - 2 else { throw .config("vsock socket path too long: \(udsPath)") }
        self.guestCID = guestCID; self.udsPath = udsPath; self.limits = limits
        state = Mutex(State(table: VsockConnectionTable(guestCID: guestCID, limits: limits)))
        var st = stat()
        if lstat(udsPath, &st) == 0, st.st_mode & S_IFMT == S_IFSOCK { unlink(udsPath) }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .socket(.last("vsock socket \(udsPath)")) }
        var rc = Self.withAddress(udsPath) { bind(fd, $0, $1) }
        if rc == 0 { rc = chmod(udsPath, 0o600) }
        if rc == 0 { rc = listen(fd, 128) }
        guard rc == 0 else { let e = SystemError.last("vsock listen on \(udsPath)"); close(fd); throw .socket(e) }
        listenFD = fd
        // A self-pipe wakes the poller (eventfd is not in Swift's Glibc module).
        var p: [Int32] = [-1, -1]
        guard pipe(&p) == 0 else { let e = SystemError.last("vsock wake pipe for \(udsPath)"); close(fd); throw .socket(e) }
        for f in p { setNonBlockingCloexec(f) }
        wakeRead = p[0]; wakeWrite = p[1]
    }

    deinit { shutdown(); close(wakeRead); close(wakeWrite) }

    public static func withAddress<R>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        var a = sockaddr_un()
        a.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &a.sun_path) { p in
            for (i, c) in path.utf8.prefix(p.count - 1).enumerated() { p[i] = c }
        }
        return withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
    }

    /// Closes every host socket and removes `udsPath`; `serve` returns. Idempotent.
    public func shutdown() {
        let first = state.withLock { s -> Bool in
            guard !s.closed else { return false }
            s.closed = true
            for c in s.table.connections.values { close(c.handle) }
            for r in s.table.retired { close(r.handle) }
            for fd in s.pending.keys { close(fd) }
            for fd in s.draining.keys { close(fd) }
            s.table = VsockConnectionTable(guestCID: guestCID, limits: limits)
            s.pending = [:]; s.draining = [:]
            return true
        }
        guard first else { return }
        close(listenFD)
        unlink(udsPath)
        wake()
    }

    func wake() { var one: UInt8 = 1; _ = write(wakeWrite, &one, 1) }

    // MARK: VsockBackend (the vCPU side: no host I/O)

    public func send(_ packet: VsockPacket) {
        state.withLock { s in
            guard !s.closed else { return }
            s.table.guestSent(packet)
        }
        wake() // the poll set may have changed (a connect to open, bytes to write, new credit)
    }

    public func receive(room: Int) -> VsockPacket? {
        let p = state.withLock { s in s.table.nextRx(room: room) }
        if p?.header.op == VsockHeader.Op.rw.rawValue { wake() } // credit used: maybe read less, or more later
        return p
    }

    public var hasPendingRx: Bool { state.withLock { $0.table.hasPendingRx } }

    // MARK: Introspection (tests, diagnostics)

    public var connectionCount: Int { state.withLock { $0.table.connections.count + $0.table.connecting.count } }
    public var pendingClientCount: Int { state.withLock { $0.pending.count } }
    public var drainingCount: Int { state.withLock { $0.draining.count } }
    public var controlQueueLength: Int { state.withLock { $0.table.control.count } }

    // MARK: The muxer thread

    /// Runs `pollHost` until `shutdown`, calling `deliver` (the transport's notify of the rx
    /// queue) whenever packets wait for the guest.
    public func serve(deliver: () -> Void) {
        while !state.withLock({ $0.closed }) {
            pollHost(timeoutMs: -1)
            if hasPendingRx { deliver() }
        }
    }

    /// One round: opens the host connections the guest asked for, closes retired ones, then
    /// waits up to `timeoutMs` (-1 = forever) for the listener, new clients, connection sockets
    /// or a wake-up, and moves what is ready.
    public func pollHost(timeoutMs: Int32) {
        enum Role { case wake, listener, pending, draining, conn(VsockKey) }
        var fds: [pollfd] = [], roles: [Role] = []
        var busy = false
        let closed = state.withLock { s -> Bool in
            guard !s.closed else { return true }
            busy = housekeeping(&s)
            fds.append(pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)); roles.append(.wake)
            fds.append(pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)); roles.append(.listener)
            for fd in s.pending.keys { fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)); roles.append(.pending) }
            for fd in s.draining.keys { fds.append(pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)); roles.append(.draining) }
            for (k, c) in s.table.connections {
                var ev: Int32 = 0
                // Read only what the guest can take; otherwise leave data in the socket (backpressure).
                if c.readBudget(limits) > 0 { ev |= Int32(POLLIN) }
                if !c.toHost.isEmpty { ev |= Int32(POLLOUT) }
                // Not polled without interest (a hung-up socket would report POLLHUP at once,
                // every round); a guest packet that changes that wakes the loop.
                guard ev != 0 else { continue }
                fds.append(pollfd(fd: c.handle, events: Int16(ev), revents: 0)); roles.append(.conn(k))
            }
            return false
        }
        guard !closed else { return }
        // Packets queued by the housekeeping go to the guest before the next wait.
        let n = poll(&fds, nfds_t(fds.count), busy ? 0 : timeoutMs)
        guard n > 0 else { return }
        state.withLock { s in
            guard !s.closed else { return }
            for (p, role) in zip(fds, roles) where p.revents != 0 {
                switch role {
                case .wake: var v = [UInt8](repeating: 0, count: 64); while read(wakeRead, &v, 64) > 0 {}
                case .listener: acceptClients(&s)
                case .pending: readConnectLine(&s, p.fd)
                case .draining: drain(&s, p.fd)
                case let .conn(k):
                    guard let c = s.table.connections[k], c.handle == p.fd else { continue }
                    if p.revents & Int16(POLLOUT) != 0 { writeHost(&s.table, c) }
                    if p.revents & Int16(POLLIN | POLLHUP | POLLERR) != 0, let c = s.table.connections[k] { readHost(&s.table, c) }
                }
            }
            _ = housekeeping(&s)
        }
    }

    /// Opens the guest's connects, shuts write sides, closes retired sockets; true when it
    /// queued packets for the guest.
    private func housekeeping(_ s: inout State) -> Bool {
        let before = s.table.control.count
        let requests = s.table.connects
        s.table.connects = []
        for h in requests { s.table.hostOpened(h, connectToHost(port: h.dstPort)) }
        for (k, c) in s.table.connections where c.wantsHostWriteShutdown {
            Glibc.shutdown(c.handle, Int32(SHUT_WR))
            s.table.hostWriteShut(k)
        }
        for r in s.table.retired {
            // What the guest sent before it closed is the host end's even when its socket is
            // full now: written as it takes it (at most maxConnections such ends, else once).
            if !r.bytes.isEmpty, s.draining.count < limits.maxConnections {
                s.draining[r.handle] = r.bytes
                drain(&s, r.handle)
            } else {
                _ = sendSome(r.handle, r.bytes)
                close(r.handle)
            }
        }
        s.table.retired = []
        return s.table.control.count != before
    }

    /// Guest-initiated: a non-blocking connect to `<udsPath>_<port>` (a Unix connect completes
    /// at once or fails, EAGAIN when the backlog is full); nil when nothing takes it.
    private func connectToHost(port: UInt32) -> Int32? {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        guard Self.withAddress("\(udsPath)_\(port)", { Glibc.connect(fd, $0, $1) }) == 0 else { close(fd); return nil }
        return fd
    }

    /// Sends what `fd` takes of `bytes` without blocking: how many it took, and whether it broke.
    private func sendSome(_ fd: Int32, _ bytes: [UInt8]) -> (sent: Int, broken: Bool) {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + done, $0.count - done, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
            if n < 0, errno == EINTR { continue }
            if n < 0, errno == EAGAIN { break }
            guard n > 0 else { return (done, true) }
            done += n
        }
        return (done, false)
    }

    /// Writes what the host end takes of `toHost`; a broken socket resets the connection.
    private func writeHost(_ t: inout VsockConnectionTable<Int32>, _ c: VsockConnection<Int32>) {
        let (done, broken) = sendSome(c.handle, c.toHost)
        if broken { t.hostFailed(c.key); return }
        if done > 0 { t.hostTook(c.key, done) }
    }

    /// Writes more of a closed connection's last bytes; its host end is closed once they are
    /// out or the socket broke (its reader went away).
    private func drain(_ s: inout State, _ fd: Int32) {
        guard let bytes = s.draining[fd] else { return }
        let (done, broken) = sendSome(fd, bytes)
        if broken || done == bytes.count {
            s.draining[fd] = nil
            close(fd)
        } else if done > 0 {
            s.draining[fd] = Array(bytes[done...])
        }
    }

    /// Reads as much as the guest's credit allows; EOF ends the host's stream, an error resets.
    private func readHost(_ t: inout VsockConnectionTable<Int32>, _ c: VsockConnection<Int32>) {
        let want = c.readBudget(limits)
        guard want > 0 else { return }
        var buf = [UInt8](repeating: 0, count: want)
        let n = buf.withUnsafeMutableBytes { recv(c.handle, $0.baseAddress!, want, Int32(MSG_DONTWAIT)) }
        if n > 0 { t.hostSent(c.key, Array(buf.prefix(n))); return }
        if n < 0, errno == EAGAIN || errno == EINTR { return }
        if n == 0 { t.hostSent(c.key, []); return }
        t.hostFailed(c.key)
    }

    private func acceptClients(_ s: inout State) {
        while true {
            let fd = accept(listenFD, nil, nil)
            guard fd >= 0 else { return }
            setNonBlockingCloexec(fd)
            guard s.pending.count < limits.maxPendingClients,
                  s.table.liveCount + s.pending.count < limits.maxConnections + limits.maxPendingClients else {
                close(fd); continue
            }
            s.pending[fd] = []
        }
    }

    /// Reads the client's `CONNECT <port>\n` a byte at a time (nothing past the newline is consumed).
    private func readConnectLine(_ s: inout State, _ fd: Int32) {
        guard var line = s.pending[fd] else { return }
        while true {
            var b: UInt8 = 0
            let n = recv(fd, &b, 1, Int32(MSG_DONTWAIT))
            if n < 0, errno == EAGAIN || errno == EINTR { s.pending[fd] = line; return }
            guard n == 1, line.count < 32 else { break } // EOF, error or an overlong line
            if b != UInt8(ascii: "\n") { line.append(b); continue }
            s.pending[fd] = nil
            let text = String(decoding: line, as: UTF8.self)
            guard text.hasPrefix("CONNECT "), let port = UInt32(text.dropFirst(8).trimmingSuffix(" \r")),
                  s.table.hostConnected(fd, toGuestPort: port) else { close(fd); return }
            return
        }
        s.pending[fd] = nil
        close(fd)
    }
}

extension Substring {
    func trimmingSuffix(_ chars: String) -> Substring {
        var s = self
        while let l = s.last, chars.contains(l) { s = s.dropLast() }
        return s
    }
}
