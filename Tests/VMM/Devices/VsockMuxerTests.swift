import Testing
import Glibc
import BrigGuestMemory
@testable import BrigDevices

/// The fake driver on a device whose backend is the VMM's muxer with real Unix sockets in a
/// temporary directory; `pump` runs the muxer thread's rounds by hand.
final class MuxedVsockDriver: VsockDriver {
    let muxer: VsockMuxer
    let dir: String

    init(limits: VsockLimits = VsockLimits(), rxBuffers: Bool = true) throws {
        var t = Array("/tmp/brig-vsock-XXXXXX".utf8CString)
        #expect(mkdtemp(&t) != nil)
        let dir = t.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        let muxer = try VsockMuxer(guestCID: Self.cid, udsPath: dir + "/v.sock", limits: limits)
        self.muxer = muxer; self.dir = dir
        try super.init(backend: muxer, maxPayload: Int(limits.bufAlloc), rxBuffers: rxBuffers) { muxer.pollHost(timeoutMs: 5) }
    }

    deinit { muxer.shutdown(); rmdir(dir) }

    var uds: String { muxer.udsPath }
}

func unixConnect(_ path: String) -> Int32 {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    let rc = VsockMuxer.withAddress(path) { connect(fd, $0, $1) }
    #expect(rc == 0)
    var tv = timeval(tv_sec: 2, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    return fd
}

func unixListen(_ path: String) -> Int32 {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    #expect(VsockMuxer.withAddress(path) { bind(fd, $0, $1) } == 0)
    #expect(listen(fd, 8) == 0)
    return fd
}

func sendString(_ fd: Int32, _ s: String) { let b = Array(s.utf8); #expect(write(fd, b, b.count) == b.count) }

func readUpTo(_ fd: Int32, _ n: Int) -> [UInt8] {
    var b = [UInt8](repeating: 0, count: n)
    let r = read(fd, &b, n)
    return r > 0 ? Array(b.prefix(r)) : []
}

/// Host client connected through `CONNECT port` and accepted by the guest; returns (client fd, host port).
func establishFromHost(_ d: MuxedVsockDriver, port: UInt32 = 1024, bufAlloc: UInt32 = 64 << 10) throws -> (Int32, UInt32) {
    let c = unixConnect(d.uds)
    sendString(c, "CONNECT \(port)\n")
    let pk = try d.receivedAfterPump()
    try #require(pk.count == 1)
    let req = pk[0].0
    #expect(req.knownOp == .request && req.srcCID == 2 && req.dstCID == VsockDriver.cid && req.dstPort == port)
    #expect(req.srcPort >= VirtioVsock.firstEphemeralPort && req.bufAlloc > 0)
    try d.send(d.packet(.response, src: port, dst: req.srcPort, bufAlloc: bufAlloc))
    d.pump() // the muxer thread writes the OK line
    #expect(String(decoding: readUpTo(c, 64), as: UTF8.self) == "OK \(req.srcPort)\n")
    return (c, req.srcPort)
}

@Test func vsockConfigAndIdentity() throws {
    let d = try MuxedVsockDriver()
    #expect(d.dev.r32(VirtioMMIO.DeviceID) == 19)
    #expect(d.dev.r32(VirtioMMIO.Config) == 3 && d.dev.r32(VirtioMMIO.Config + 4) == 0)
    var st = stat()
    #expect(lstat(d.uds, &st) == 0 && st.st_mode & 0o777 == 0o600 && st.st_mode & S_IFMT == S_IFSOCK)
    d.muxer.shutdown()
    #expect(lstat(d.uds, &st) != 0) // unlinked on teardown
    #expect(throws: VsockError.self) { try VsockMuxer(guestCID: 2, udsPath: d.dir + "/x") }
    #expect(throws: VsockError.self) { try VirtioVsock(guestCID: 2, backend: d.muxer) }
}

@Test func vsockHeaderRoundTrips() {
    let h = VsockHeader(srcCID: 3, dstCID: 2, srcPort: 7, dstPort: 1024, len: 5, op: .rw, flags: 3, bufAlloc: 99, fwdCnt: 42)
    #expect(h.bytes.count == 44 && VsockHeader(h.bytes) == h && VsockHeader(h.bytes.prefix(43)) == nil)
    #expect(h.bytes[28] == 1 && h.bytes[30] == 5) // type STREAM, op RW at their spec offsets
}

@Test func hostConnectThenDataBothWays() throws {
    let d = try MuxedVsockDriver()
    let (c, hp) = try establishFromHost(d)
    defer { close(c) }
    sendString(c, "hello")
    let pk = try d.receivedAfterPump()
    try #require(pk.count == 1)
    #expect(pk[0].0.knownOp == .rw && pk[0].0.len == 5 && pk[0].0.srcPort == hp && pk[0].0.dstPort == 1024)
    #expect(String(decoding: pk[0].1, as: UTF8.self) == "hello")
    try d.send(d.packet(.rw, src: 1024, dst: hp, len: 5), Array("world".utf8))
    d.pump()
    #expect(String(decoding: readUpTo(c, 64), as: UTF8.self) == "world")
    // Guest closes: the client sees EOF, the guest gets its RST, the connection is gone.
    try d.send(d.packet(.shutdown, src: 1024, dst: hp, flags: 3))
    d.pump()
    #expect(readUpTo(c, 64).isEmpty)
    #expect(try d.received().contains { $0.0.knownOp == .rst && $0.0.dstPort == 1024 })
    #expect(d.muxer.connectionCount == 0)
}

@Test func hostConnectRefusedByGuestClosesClient() throws {
    let d = try MuxedVsockDriver()
    let c = unixConnect(d.uds)
    defer { close(c) }
    sendString(c, "CONNECT 4444\n")
    let req = try #require(try d.receivedAfterPump().first).0
    try d.send(d.packet(.rst, src: 4444, dst: req.srcPort))
    d.pump()
    #expect(readUpTo(c, 64).isEmpty)
    #expect(d.muxer.connectionCount == 0)
    // A malformed CONNECT line closes the client too.
    let bad = unixConnect(d.uds)
    defer { close(bad) }
    sendString(bad, "CONNEKT 1\n")
    d.pump()
    #expect(readUpTo(bad, 64).isEmpty && d.muxer.pendingClientCount == 0)
}

/// Bytes the guest has no credit for stay in the host socket (the muxer does not read them).
@Test func hostBytesWaitInTheSocketForGuestCredit() throws {
    let d = try MuxedVsockDriver()
    let (c, hp) = try establishFromHost(d, bufAlloc: 8)
    defer { close(c) }
    sendString(c, "0123456789abcdefghij") // 20 bytes, guest has room for 8
    #expect(try d.receivedAfterPump().map(\.1) == [Array("01234567".utf8)])
    #expect(try d.receivedAfterPump().isEmpty)
    // A larger buffer and 8 consumed: the 12 bytes left in the socket follow.
    try d.send(d.packet(.creditUpdate, src: 1024, dst: hp, bufAlloc: 64, fwdCnt: 8))
    #expect(try d.receivedAfterPump().map(\.1).joined().elementsEqual(Array("89abcdefghij".utf8)))
}

@Test func rstForUnknownPortsAndConnections() throws {
    let d = try MuxedVsockDriver()
    try d.send(d.packet(.request, src: 5000, dst: 5555)) // nothing listens on <uds>_5555
    #expect(try d.received().isEmpty) // the connect happens on the muxer thread, not on the vCPU's
    var pk = try d.receivedAfterPump()
    #expect(pk.count == 1 && pk[0].0.knownOp == .rst && pk[0].0.dstPort == 5000 && pk[0].0.srcPort == 5555)
    try d.send(d.packet(.rw, src: 5000, dst: 77, len: 3), [1, 2, 3]) // no such connection
    pk = try d.received()
    #expect(pk.count == 1 && pk[0].0.knownOp == .rst)
    try d.send(d.packet(.rst, src: 5000, dst: 77)) // an RST is never answered
    #expect(try d.received().isEmpty)
}

@Test func guestInitiatedConnectionReachesHostListener() throws {
    let d = try MuxedVsockDriver()
    let l = unixListen(d.uds + "_1025")
    defer { close(l); unlink(d.uds + "_1025") }
    try d.send(d.packet(.request, src: 7000, dst: 1025))
    let resp = try #require(try d.receivedAfterPump().first)
    #expect(resp.0.knownOp == .response && resp.0.srcPort == 1025 && resp.0.dstPort == 7000 && resp.0.srcCID == 2)
    let a = accept(l, nil, nil)
    defer { close(a) }
    var tv = timeval(tv_sec: 2, tv_usec: 0)
    setsockopt(a, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    try d.send(d.packet(.rw, src: 7000, dst: 1025, len: 4), Array("ping".utf8))
    d.pump()
    #expect(readUpTo(a, 64) == Array("ping".utf8))
    sendString(a, "pong")
    let pk = try d.receivedAfterPump()
    #expect(pk.count == 1 && pk.first?.1 == Array("pong".utf8))
    // Host side closes: the guest learns it will get no more data...
    shutdown(a, Int32(SHUT_WR))
    let sd = try d.receivedAfterPump()
    #expect(sd.count == 1 && sd.first?.0.knownOp == .shutdown && sd.first?.0.flags == VsockHeader.shutdownSend)
    // ...and can still send until it closes its side.
    try d.send(d.packet(.rw, src: 7000, dst: 1025, len: 3), Array("bye".utf8))
    d.pump()
    #expect(readUpTo(a, 64) == Array("bye".utf8))
    try d.send(d.packet(.shutdown, src: 7000, dst: 1025, flags: 3))
    d.pump()
    #expect(readUpTo(a, 64).isEmpty)
    #expect(d.muxer.connectionCount == 0)
}

@Test func connectionFloodsStayBounded() throws {
    var lim = VsockLimits(); lim.maxConnections = 16; lim.maxPendingClients = 4; lim.maxControlPackets = 64
    let d = try MuxedVsockDriver(limits: lim, rxBuffers: false) // a guest that never reads rx
    let l = unixListen(d.uds + "_9")
    defer { close(l); unlink(d.uds + "_9") }
    for i in 0..<10_000 { try d.send(d.packet(.request, src: UInt32(i), dst: UInt32(i % 2 == 0 ? 9 : 10))) }
    #expect(d.muxer.connectionCount <= 16 && d.muxer.controlQueueLength <= 64)
    #expect(d.dev.status & VirtioMMIO.needsReset == 0)
    // Host clients that never send their CONNECT line are capped too.
    let clients = (0..<10).map { _ in unixConnect(d.uds) }
    defer { clients.forEach { close($0) } }
    d.pump()
    #expect(d.muxer.pendingClientCount <= 4)
}

/// The guest closes (SHUTDOWN both ways) while more of its bytes wait for the host end than
/// that socket can take at once: the client still reads every byte, then EOF.
@Test func guestCloseFlushesWhatTheHostSocketCouldNotTakeYet() throws {
    var lim = VsockLimits(); lim.bufAlloc = 1 << 20
    let d = try MuxedVsockDriver(limits: lim)
    let (c, hp) = try establishFromHost(d)
    defer { close(c) }
    let chunk = 32 << 10
    var sent: [UInt8] = []
    for i in 0..<32 {  // 1 MiB, more than a Unix socket holds unread
        let bytes = (0..<chunk).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ i) }
        try d.send(d.packet(.rw, src: 1024, dst: hp, len: UInt32(chunk)), bytes)
        sent += bytes
        d.pump(rounds: 1)
    }
    try d.send(d.packet(.shutdown, src: 1024, dst: hp, flags: 3))
    var got: [UInt8] = []
    for _ in 0..<10_000 {
        d.pump(rounds: 1)
        let b = readUpTo(c, 256 << 10)
        if b.isEmpty { break }
        got += b
    }
    #expect(got.count == sent.count && got == sent, "\(got.count) of \(sent.count) bytes")
    #expect(try d.received().contains { $0.0.knownOp == .rst && $0.0.dstPort == 1024 })
    #expect(d.muxer.connectionCount == 0 && d.muxer.drainingCount == 0)
}

/// A closed connection's host end whose reader went away is not kept for its unread bytes.
@Test func drainingHostEndWhoseReaderLeftIsClosed() throws {
    var lim = VsockLimits(); lim.bufAlloc = 1 << 20
    let d = try MuxedVsockDriver(limits: lim)
    let (c, hp) = try establishFromHost(d)
    for _ in 0..<16 {
        try d.send(d.packet(.rw, src: 1024, dst: hp, len: 32 << 10), [UInt8](repeating: 1, count: 32 << 10))
        d.pump(rounds: 1)
    }
    try d.send(d.packet(.shutdown, src: 1024, dst: hp, flags: 3))
    d.pump(rounds: 1)
    #expect(d.muxer.drainingCount == 1) // 512 KiB do not fit the unread socket
    close(c)
    d.pump(rounds: 2)
    #expect(d.muxer.drainingCount == 0 && d.muxer.connectionCount == 0)
}
