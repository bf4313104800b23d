#if canImport(Glibc)
import Glibc
#endif
import BrigGuestMemory
import Synchronization

public enum VsockError: Error, Equatable, CustomStringConvertible {
    case config(String)
    case socket(path: String, op: String, errno: Int32)
    public var description: String {
        switch self {
        case let .config(m): return m
        case let .socket(p, op, e): return "vsock \(op) \(p): \(String(cString: strerror(e)))"
        }
    }
}

/// Limits that keep a hostile guest (or host client) from growing the device without bound.
public struct VsockLimits: Sendable {
    /// Live connections (both directions, including ones waiting for the guest's RESPONSE).
    public var maxConnections = 256
    /// Accepted host clients that have not yet sent their `CONNECT <port>` line.
    public var maxPendingClients = 64
    /// Control packets (RESPONSE, RST, CREDIT_UPDATE, ...) waiting for rx buffers; more are dropped.
    public var maxControlPackets = 1024
    /// Our advertised buf_alloc: guest→host bytes buffered per connection while the host socket is full.
    public var bufAlloc: UInt32 = 256 << 10
    public init() {}
}

/// virtio-vsock (device type 19) with Firecracker's hybrid host side: guest connections map
/// to Unix sockets. Host-initiated: a client connects to `udsPath` and writes
/// `CONNECT <port>\n`; once the guest accepts, it reads `OK <hostport>\n` and the socket
/// carries the stream. Guest-initiated: a guest connect to CID 2 port P is forwarded to the
/// Unix socket `<udsPath>_<P>`.
///
/// Queues: 0 rx (device→guest), 1 tx (guest→device), 2 event (unused). Host sockets are
/// serviced by `pollHost` (one poll round) — `serve` loops on it on a thread of its own
/// and calls `deliver` (the transport's `notify(0)`) so pending rx packets reach the guest.
public final class VirtioVsock: VirtioDevice, @unchecked Sendable {
    public static let hostCID: UInt64 = 2
    public static let rxQueue = 0, txQueue = 1, eventQueue = 2
    public static let firstEphemeralPort: UInt32 = 1 << 30

    public let deviceType: UInt32 = 19
    public let queueMaxSizes: [UInt16] = [256, 256, 256]
    public let features: UInt64 = 0
    public let guestCID: UInt64
    public let udsPath: String
    public let limits: VsockLimits

    struct Key: Hashable { var local: UInt32; var peer: UInt32 } // host port, guest port
    enum State { case connecting, established }
    struct Conn {
        var fd: Int32
        var state: State
        var credit = VsockCredit()
        /// Bytes forwarded to the host socket (our fwd_cnt) and the value last told to the guest.
        var fwdCnt: UInt32 = 0, fwdCntSent: UInt32 = 0
        /// Guest→host bytes the host socket has not taken yet.
        var txBuf: [UInt8] = []
        /// Host socket has data (or EOF) to read.
        var readable = false
        var hostEOF = false
        /// Guest said it will not receive / send any more.
        var guestNoRecv = false, guestNoSend = false
        var creditUpdatePending = false
    }

    private struct State_ {
        var conns: [Key: Conn] = [:]
        /// Accepted clients still sending their CONNECT line.
        var pending: [Int32: [UInt8]] = [:]
        var control: [VsockHeader] = []
        var nextPort = VirtioVsock.firstEphemeralPort
        var closed = false
        /// A connection stopped being `readable` outside `pollHost` (drained by `fillRx`): the
        /// poller's current set has no POLLIN for it and must be rebuilt.
        var repoll = false
    }
    private let state = Mutex(State_())
    private let listenFD: Int32
    private let wakeRead: Int32, wakeWrite: Int32

    /// Creates the device and its listening socket at `udsPath` (mode 0600; a stale socket is removed).
    public init(guestCID: UInt64, udsPath: String, limits: VsockLimits = VsockLimits()) throws(VsockError) {
        guard guestCID >= 3, guestCID <= UInt64(UInt32.max) - 1 else { throw .config("vsock guest CID \(guestCID) must be 3...2^32-2") }
        guard udsPath.utf8.count + 12 < MemoryLayout<sockaddr_un>.size - 2 else { throw .config("vsock socket path too long: \(udsPath)") }
        self.guestCID = guestCID; self.udsPath = udsPath; self.limits = limits
        var st = stat()
        if lstat(udsPath, &st) == 0, st.st_mode & S_IFMT == S_IFSOCK { unlink(udsPath) }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .socket(path: udsPath, op: "socket", errno: errno) }
        var rc = Self.withAddress(udsPath) { bind(fd, $0, $1) }
        if rc == 0 { rc = chmod(udsPath, 0o600) }
        if rc == 0 { rc = listen(fd, 128) }
        guard rc == 0 else { let e = errno; close(fd); throw .socket(path: udsPath, op: "listen on", errno: e) }
        listenFD = fd
        // A self-pipe wakes the poller (eventfd is not in Swift's Glibc module).
        var p: [Int32] = [-1, -1]
        guard pipe(&p) == 0 else { let e = errno; close(fd); throw .socket(path: udsPath, op: "wake pipe for", errno: e) }
        for f in p { Self.setFlags(f) }
        wakeRead = p[0]; wakeWrite = p[1]
    }

    deinit { shutdownHost(); close(wakeRead); close(wakeWrite) }

    static func setFlags(_ fd: Int32) {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
    }

    static func withAddress<R>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        var a = sockaddr_un()
        a.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &a.sun_path) { p in
            for (i, c) in path.utf8.prefix(p.count - 1).enumerated() { p[i] = c }
        }
        return withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
    }

    /// Closes every host socket and removes `udsPath`; `serve` returns. Idempotent.
    public func shutdownHost() {
        let first = state.withLock { s -> Bool in
            guard !s.closed else { return false }
            s.closed = true
            for c in s.conns.values { close(c.fd) }
            for fd in s.pending.keys { close(fd) }
            s.conns = [:]; s.pending = [:]; s.control = []
            return true
        }
        guard first else { return }
        close(listenFD)
        unlink(udsPath)
        wake()
    }

    func wake() { var one: UInt8 = 1; _ = write(wakeWrite, &one, 1) }

    // MARK: Introspection (tests, diagnostics)

    public var connectionCount: Int { state.withLock { $0.conns.count } }
    public var pendingClientCount: Int { state.withLock { $0.pending.count } }
    public var controlQueueLength: Int { state.withLock { $0.control.count } }
    /// Whether rx packets are waiting for guest buffers.
    public var hasRxWork: Bool { state.withLock { Self.rxWork($0) } }
    private static func rxWork(_ s: State_) -> Bool {
        !s.control.isEmpty || s.conns.values.contains { $0.state == .established && $0.readable && !$0.guestNoRecv && $0.credit.available > 0 }
    }

    // MARK: VirtioDevice

    public func readConfig(offset: UInt64, into data: UnsafeMutableRawBufferPointer) {
        for i in data.indices {
            let o = Int(offset) + i
            data[i] = o < 8 ? UInt8(truncatingIfNeeded: guestCID >> (8 * o)) : 0
        }
    }

    public func followUpQueues(after index: Int) -> [Int] { index == Self.txQueue ? [Self.rxQueue] : [] }

    public func process(queue index: Int, _ queue: inout Virtqueue, memory: GuestMemory) throws(VirtqueueError) -> Bool {
        switch index {
        case Self.txQueue:
            var used = false
            while let chain = try queue.pop(memory) {
                handleTx(chain, memory)
                try queue.pushUsed(memory, head: chain.head, length: 0)
                used = true
            }
            return used
        case Self.rxQueue: return try fillRx(&queue, memory)
        default: return false // event queue: we never raise transport events
        }
    }

    // MARK: Guest → host

    private func reply(_ h: VsockHeader, _ op: VsockHeader.Op, flags: UInt32 = 0) -> VsockHeader {
        VsockHeader(srcCID: Self.hostCID, dstCID: guestCID, srcPort: h.dstPort, dstPort: h.srcPort, op: op, flags: flags)
    }

    private func enqueue(_ s: inout State_, _ h: VsockHeader) {
        guard s.control.count < limits.maxControlPackets else { return } // guest is not reading: drop
        s.control.append(h)
    }

    /// Gathers the readable part of a chain: header plus at most `len` payload bytes.
    private func readPacket(_ chain: DescriptorChain, _ mem: GuestMemory) -> (VsockHeader, [UInt8])? {
        var bytes: [UInt8] = []
        var want = VsockHeader.size
        var hdr: VsockHeader?
        for b in chain.readable {
            var off: UInt64 = 0
            while off < UInt64(b.length), bytes.count < want {
                let n = min(UInt64(b.length) - off, UInt64(want - bytes.count))
                guard let chunk = try? mem.read(b.address + off, count: Int(n)) else { return nil }
                bytes += chunk; off += n
                if hdr == nil, bytes.count == VsockHeader.size {
                    hdr = VsockHeader(bytes)
                    // A payload beyond our buffer space can never be legitimate.
                    guard let h = hdr, h.len <= limits.bufAlloc else { return hdr.map { ($0, []) } }
                    want += Int(h.len)
                }
            }
        }
        guard let h = hdr else { return nil }
        return (h, Array(bytes.dropFirst(VsockHeader.size)))
    }

    func handleTx(_ chain: DescriptorChain, _ mem: GuestMemory) {
        guard let (h, payload) = readPacket(chain, mem) else { return } // short header: drop
        state.withLock { s in
            guard !s.closed else { return }
            handle(&s, h, payload)
        }
        wake() // poll set may have changed (new socket, new credit, data to flush)
    }

    private func handle(_ s: inout State_, _ h: VsockHeader, _ payload: [UInt8]) {
        // Wrong addressing or socket type: answer RST (never answer an RST).
        guard h.srcCID == guestCID, h.dstCID == Self.hostCID, h.type == VsockHeader.typeStream,
              let op = h.knownOp else {
            if h.op != VsockHeader.Op.rst.rawValue, h.srcCID == guestCID { enqueue(&s, reply(h, .rst)) }
            return
        }
        let key = Key(local: h.dstPort, peer: h.srcPort)
        // A payload shorter than its len (or beyond our buffer space) resets the connection.
        guard op != .rw || Int(h.len) == payload.count else {
            if let c = s.conns[key] { drop(&s, key, c) }
            enqueue(&s, reply(h, .rst))
            return
        }
        guard var c = s.conns[key] else {
            if op == .request { connectToHost(&s, h, key) } else if op != .rst { enqueue(&s, reply(h, .rst)) }
            return
        }
        c.credit.update(from: h)
        switch op {
        case .request: // duplicate connection
            drop(&s, key, c); enqueue(&s, reply(h, .rst)); return
        case .response:
            guard c.state == .connecting else { drop(&s, key, c); enqueue(&s, reply(h, .rst)); return }
            c.state = .established
            let ok = Array("OK \(key.local)\n".utf8)
            guard sendAll(c.fd, ok) else { drop(&s, key, c); enqueue(&s, reply(h, .rst)); return }
        case .rst:
            drop(&s, key, c); return
        case .shutdown:
            c.guestNoRecv = c.guestNoRecv || h.flags & VsockHeader.shutdownRcv != 0
            c.guestNoSend = c.guestNoSend || h.flags & VsockHeader.shutdownSend != 0
            if c.guestNoRecv && c.guestNoSend {
                // Guest closed: flush what we can, close the client, confirm with RST.
                _ = flush(&c)
                drop(&s, key, c); enqueue(&s, reply(h, .rst)); return
            }
            if c.guestNoSend, c.txBuf.isEmpty { Glibc.shutdown(c.fd, Int32(SHUT_WR)) }
        case .rw:
            guard c.state == .established, !c.guestNoSend else { drop(&s, key, c); enqueue(&s, reply(h, .rst)); return }
            c.txBuf += payload
            // The guest must stay within the credit we advertised.
            guard flush(&c), c.txBuf.count <= Int(limits.bufAlloc) else { drop(&s, key, c); enqueue(&s, reply(h, .rst)); return }
        case .creditUpdate: break
        case .creditRequest: c.creditUpdatePending = true
        }
        if c.fwdCnt &- c.fwdCntSent >= limits.bufAlloc / 4 { c.creditUpdatePending = true }
        if c.creditUpdatePending {
            c.creditUpdatePending = false
            enqueue(&s, credited(&c, key, .creditUpdate))
        }
        s.conns[key] = c
    }

    /// Guest-initiated: connect to `<udsPath>_<port>`; RESPONSE on success, RST otherwise.
    private func connectToHost(_ s: inout State_, _ h: VsockHeader, _ key: Key) {
        guard s.conns.count < limits.maxConnections else { enqueue(&s, reply(h, .rst)); return }
        // Non-blocking: a Unix connect completes at once or fails (EAGAIN when the backlog is
        // full), so a stuck host listener cannot stall the vCPU.
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { enqueue(&s, reply(h, .rst)); return }
        let rc = Self.withAddress("\(udsPath)_\(h.dstPort)") { Glibc.connect(fd, $0, $1) }
        guard rc == 0 else { close(fd); enqueue(&s, reply(h, .rst)); return }
        var c = Conn(fd: fd, state: .established)
        c.credit.update(from: h)
        enqueue(&s, credited(&c, key, .response))
        s.conns[key] = c
    }

    /// A control packet for `c` carrying our current credit.
    private func credited(_ c: inout Conn, _ key: Key, _ op: VsockHeader.Op, flags: UInt32 = 0) -> VsockHeader {
        c.fwdCntSent = c.fwdCnt
        return VsockHeader(srcCID: Self.hostCID, dstCID: guestCID, srcPort: key.local, dstPort: key.peer, op: op,
                           flags: flags, bufAlloc: limits.bufAlloc, fwdCnt: c.fwdCnt)
    }

    private func drop(_ s: inout State_, _ key: Key, _ c: Conn) {
        close(c.fd)
        s.conns[key] = nil
    }

    /// Writes buffered guest bytes to the host socket; false when the socket is broken.
    private func flush(_ c: inout Conn) -> Bool {
        var done = 0
        defer { c.txBuf.removeFirst(done); c.fwdCnt &+= UInt32(truncatingIfNeeded: done) }
        while done < c.txBuf.count {
            let n = c.txBuf.withUnsafeBytes { send(c.fd, $0.baseAddress! + done, $0.count - done, Int32(MSG_NOSIGNAL)) }
            if n < 0, errno == EINTR { continue }
            if n < 0, errno == EAGAIN { break }
            guard n > 0 else { return false }
            done += n
        }
        if done > 0, c.txBuf.count == done, c.guestNoSend { Glibc.shutdown(c.fd, Int32(SHUT_WR)) }
        return true
    }

    private func sendAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + done, $0.count - done, Int32(MSG_NOSIGNAL)) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { return false }
            done += n
        }
        return true
    }

    // MARK: Host → guest

    /// Writes pending packets into rx chains: control packets first, then data read straight
    /// from host sockets within each connection's guest credit.
    private func fillRx(_ queue: inout Virtqueue, _ mem: GuestMemory) throws(VirtqueueError) -> Bool {
        var used = false
        while true {
            let more = state.withLock { Self.rxWork($0) }
            guard more, let chain = try queue.pop(mem) else { break }
            let space = chain.writable.reduce(0) { $0 + Int($1.length) }
            let packet = state.withLock { s in nextRxPacket(&s, room: space - VsockHeader.size) }
            if space >= VsockHeader.size, packet == nil { queue.undoPop(); break } // nothing after all
            var written = 0
            if let (h, data) = packet { written = scatter(h.bytes + data, chain.writable, mem) }
            try queue.pushUsed(mem, head: chain.head, length: UInt32(written)) // too-small buffers come back empty
            used = true
        }
        // Drained here (on a vCPU thread, or the poller's own delivery): the poller may be waiting
        // on a set built while the connection was readable, without POLLIN for it.
        if state.withLock({ s in defer { s.repoll = false }; return s.repoll }) { wake() }
        return used
    }

    private func nextRxPacket(_ s: inout State_, room: Int) -> (VsockHeader, [UInt8])? {
        guard room >= 0 else { return nil }
        if !s.control.isEmpty { return (s.control.removeFirst(), []) }
        for (key, var c) in s.conns where c.state == .established && c.readable && !c.guestNoRecv && c.credit.available > 0 {
            let want = min(Int(c.credit.available), room, 64 << 10)
            guard want > 0 else { continue }
            var buf = [UInt8](repeating: 0, count: want)
            let n = buf.withUnsafeMutableBytes { recv(c.fd, $0.baseAddress!, want, Int32(MSG_DONTWAIT)) }
            if n > 0 {
                c.credit.sent &+= UInt32(n)
                var h = credited(&c, key, .rw)
                h.len = UInt32(n)
                s.conns[key] = c
                return (h, Array(buf.prefix(n)))
            }
            if n < 0, errno == EAGAIN || errno == EINTR { c.readable = false; s.conns[key] = c; s.repoll = true; continue }
            if n == 0, !c.hostEOF {
                // Client shut down its sending side: the guest gets no more data from us.
                c.hostEOF = true; c.readable = false
                let h = credited(&c, key, .shutdown, flags: VsockHeader.shutdownSend)
                s.conns[key] = c
                return (h, [])
            }
            // Socket error: reset.
            drop(&s, key, c)
            return (credited(&c, key, .rst), [])
        }
        return nil
    }

    private func scatter(_ bytes: [UInt8], _ bufs: [DescriptorBuffer], _ mem: GuestMemory) -> Int {
        var off = 0
        for b in bufs where off < bytes.count {
            let n = min(Int(b.length), bytes.count - off)
            guard (try? mem.write(bytes[off..<off + n], at: b.address)) != nil else { return off }
            off += n
        }
        return off
    }

    // MARK: Host sockets

    /// One round of host socket servicing: waits up to `timeoutMs` (-1 = forever) for the
    /// listener, new clients, connection sockets or a wake-up, and updates state.
    public func pollHost(timeoutMs: Int32) {
        enum Role { case wake, listener, pending, conn(Key) }
        var fds: [pollfd] = [], roles: [Role] = []
        let closed = state.withLock { s -> Bool in
            guard !s.closed else { return true }
            fds.append(pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)); roles.append(.wake)
            fds.append(pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)); roles.append(.listener)
            for fd in s.pending.keys { fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)); roles.append(.pending) }
            for (k, c) in s.conns {
                var ev: Int32 = 0
                // Read only what the guest can take; otherwise leave data in the socket (backpressure).
                if c.state == .established, !c.readable, !c.hostEOF, !c.guestNoRecv, c.credit.available > 0 { ev |= Int32(POLLIN) }
                if !c.txBuf.isEmpty { ev |= Int32(POLLOUT) }
                fds.append(pollfd(fd: c.fd, events: Int16(ev), revents: 0)); roles.append(.conn(k))
            }
            return false
        }
        guard !closed else { return }
        let n = poll(&fds, nfds_t(fds.count), timeoutMs)
        guard n > 0 else { return }
        state.withLock { s in
            guard !s.closed else { return }
            for (p, role) in zip(fds, roles) where p.revents != 0 {
                switch role {
                case .wake: var v = [UInt8](repeating: 0, count: 64); while read(wakeRead, &v, 64) > 0 {}
                case .listener: acceptClients(&s)
                case .pending: readConnectLine(&s, p.fd)
                case let .conn(k):
                    guard var c = s.conns[k], c.fd == p.fd else { continue }
                    if p.revents & Int16(POLLOUT) != 0, !flush(&c) {
                        drop(&s, k, c); enqueue(&s, credited(&c, k, .rst)); continue
                    }
                    if p.revents & Int16(POLLIN | POLLHUP | POLLERR) != 0, c.state == .established { c.readable = true }
                    if c.fwdCnt &- c.fwdCntSent >= limits.bufAlloc / 4 { enqueue(&s, credited(&c, k, .creditUpdate)) }
                    s.conns[k] = c
                }
            }
        }
    }

    private func acceptClients(_ s: inout State_) {
        while true {
            let fd = accept(listenFD, nil, nil)
            guard fd >= 0 else { return }
            Self.setFlags(fd)
            guard s.pending.count < limits.maxPendingClients, s.conns.count + s.pending.count < limits.maxConnections + limits.maxPendingClients else {
                close(fd); continue
            }
            s.pending[fd] = []
        }
    }

    /// Reads the client's `CONNECT <port>\n` a byte at a time (nothing past the newline is consumed).
    private func readConnectLine(_ s: inout State_, _ fd: Int32) {
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
                  s.conns.count < limits.maxConnections, let local = freePort(&s) else { close(fd); return }
            let key = Key(local: local, peer: port)
            var c = Conn(fd: fd, state: .connecting)
            enqueue(&s, credited(&c, key, .request))
            s.conns[key] = c
            return
        }
        s.pending[fd] = nil
        close(fd)
    }

    private func freePort(_ s: inout State_) -> UInt32? {
        for _ in 0..<1024 {
            let p = s.nextPort
            s.nextPort = p == UInt32.max ? Self.firstEphemeralPort : p + 1
            if !s.conns.keys.contains(where: { $0.local == p }) { return p }
        }
        return nil
    }

    /// Runs `pollHost` until `shutdownHost`, calling `deliver` (the transport's notify of the
    /// rx queue) whenever packets wait for the guest.
    public func serve(deliver: () -> Void) {
        while !state.withLock({ $0.closed }) {
            pollHost(timeoutMs: -1)
            if hasRxWork { deliver() }
        }
    }
}

extension Substring {
    func trimmingSuffix(_ chars: String) -> Substring {
        var s = self
        while let l = s.last, chars.contains(l) { s = s.dropLast() }
        return s
    }
}
