import Testing
import Glibc
import BrigGuestMemory
@testable import BrigDevices

/// A polled guest virtio-vsock driver on plain memory: three queues of 64 entries, 16 rx
/// buffers of 4 KiB, tx packets as a header descriptor plus a payload descriptor.
final class VsockDriver {
    static let cid: UInt64 = 3
    let mem: GuestMemory
    let vs: VirtioVsock
    let dev: VirtioMMIO
    let dir: String
    let qsize: UInt16 = 64
    var availIdx: [UInt16] = [0, 0, 0]
    var rxSeen: UInt16 = 0
    static let rxBuf: UInt64 = 0x20000, rxLen: UInt32 = 4096, rxCount: UInt16 = 16
    static let txHdr: UInt64 = 0x40000, txData: UInt64 = 0x41000

    init(limits: VsockLimits = VsockLimits(), rxBuffers: Bool = true) throws {
        mem = try GuestMemory(regions: [GuestRegion(guestBase: 0, size: 0x100000)])
        var t = Array("/tmp/brig-vsock-XXXXXX".utf8CString)
        #expect(mkdtemp(&t) != nil)
        dir = t.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        vs = try VirtioVsock(guestCID: Self.cid, udsPath: dir + "/v.sock", limits: limits)
        dev = VirtioMMIO(device: vs, memory: mem, irq: nil)
        dev.w32(VirtioMMIO.Status, VirtioMMIO.acknowledge | VirtioMMIO.driver)
        dev.w32(VirtioMMIO.DriverFeaturesSel, 1); dev.w32(VirtioMMIO.DriverFeatures, 1)
        dev.w32(VirtioMMIO.Status, VirtioMMIO.acknowledge | VirtioMMIO.driver | VirtioMMIO.featuresOK)
        for q in 0..<3 {
            dev.w32(VirtioMMIO.QueueSel, UInt32(q))
            dev.w32(VirtioMMIO.QueueNum, UInt32(qsize))
            dev.w32(VirtioMMIO.QueueDescLow, UInt32(desc(q))); dev.w32(VirtioMMIO.QueueDriverLow, UInt32(desc(q) + 0x1000))
            dev.w32(VirtioMMIO.QueueDeviceLow, UInt32(desc(q) + 0x2000)); dev.w32(VirtioMMIO.QueueReady, 1)
        }
        dev.w32(VirtioMMIO.Status, VirtioMMIO.acknowledge | VirtioMMIO.driver | VirtioMMIO.featuresOK | VirtioMMIO.driverOK)
        if rxBuffers {
            for i in 0..<Self.rxCount {
                try setDesc(0, i, addr: Self.rxBuf + UInt64(i) * UInt64(Self.rxLen), len: Self.rxLen, flags: Virtqueue.descWrite)
                try publish(0, i)
            }
        }
    }

    deinit { vs.shutdownHost(); rmdir(dir) }

    var uds: String { vs.udsPath }
    func desc(_ q: Int) -> UInt64 { 0x1000 + UInt64(q) * 0x3000 }

    func setDesc(_ q: Int, _ i: UInt16, addr: UInt64, len: UInt32, flags: UInt16 = 0, next: UInt16 = 0) throws {
        let d = desc(q) + 16 * UInt64(i)
        try mem.store(addr, at: d); try mem.store(len, at: d + 8); try mem.store(flags, at: d + 12); try mem.store(next, at: d + 14)
    }

    func publish(_ q: Int, _ head: UInt16) throws {
        try mem.store(head, at: desc(q) + 0x1000 + 4 + 2 * UInt64(availIdx[q] % qsize))
        availIdx[q] &+= 1
        try mem.store(availIdx[q], at: desc(q) + 0x1000 + 2)
    }

    /// Sends one packet on tx; `descLen` overrides the header descriptor length (hostile tests).
    func send(_ h: VsockHeader, _ payload: [UInt8] = [], headerDescLen: UInt32? = nil) throws {
        try mem.write(h.bytes, at: Self.txHdr)
        try mem.write(payload, at: Self.txData)
        try setDesc(1, 0, addr: Self.txHdr, len: headerDescLen ?? UInt32(VsockHeader.size), flags: payload.isEmpty ? 0 : Virtqueue.descNext, next: 1)
        try setDesc(1, 1, addr: Self.txData, len: UInt32(payload.count))
        try publish(1, 0)
        dev.notify(1)
    }

    func packet(_ op: VsockHeader.Op, src: UInt32, dst: UInt32, len: UInt32 = 0, flags: UInt32 = 0,
                bufAlloc: UInt32 = 64 << 10, fwdCnt: UInt32 = 0) -> VsockHeader {
        VsockHeader(srcCID: Self.cid, dstCID: 2, srcPort: src, dstPort: dst, len: len, op: op, flags: flags, bufAlloc: bufAlloc, fwdCnt: fwdCnt)
    }

    /// A few rounds of host-socket servicing and rx delivery, as the event loop would do.
    func pump(rounds: Int = 4) {
        for _ in 0..<rounds { vs.pollHost(timeoutMs: 5); dev.notify(0) }
    }

    /// Packets the device has placed in rx since the last call; their buffers are re-posted.
    func received() throws -> [(VsockHeader, [UInt8])] {
        var out: [(VsockHeader, [UInt8])] = []
        let used = desc(0) + 0x2000
        let idx: UInt16 = try mem.load(at: used + 2)
        while rxSeen != idx {
            let e = used + 4 + 8 * UInt64(rxSeen % qsize)
            let head = UInt16(truncatingIfNeeded: try mem.load(UInt32.self, at: e))
            let len: UInt32 = try mem.load(at: e + 4)
            let bytes = try mem.read(Self.rxBuf + UInt64(head) * UInt64(Self.rxLen), count: Int(len))
            if let h = VsockHeader(bytes) { out.append((h, Array(bytes.dropFirst(VsockHeader.size)))) }
            rxSeen &+= 1
            try publish(0, head)
        }
        return out
    }

    func receivedAfterPump() throws -> [(VsockHeader, [UInt8])] { pump(); return try received() }
}

func unixConnect(_ path: String) -> Int32 {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    let rc = VirtioVsock.withAddress(path) { connect(fd, $0, $1) }
    #expect(rc == 0)
    var tv = timeval(tv_sec: 2, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    return fd
}

func unixListen(_ path: String) -> Int32 {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    #expect(VirtioVsock.withAddress(path) { bind(fd, $0, $1) } == 0)
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
func establishFromHost(_ d: VsockDriver, port: UInt32 = 1024, bufAlloc: UInt32 = 64 << 10) throws -> (Int32, UInt32) {
    let c = unixConnect(d.uds)
    sendString(c, "CONNECT \(port)\n")
    let pk = try d.receivedAfterPump()
    try #require(pk.count == 1)
    let req = pk[0].0
    #expect(req.knownOp == .request && req.srcCID == 2 && req.dstCID == VsockDriver.cid && req.dstPort == port)
    #expect(req.srcPort >= VirtioVsock.firstEphemeralPort && req.bufAlloc > 0)
    try d.send(d.packet(.response, src: port, dst: req.srcPort, bufAlloc: bufAlloc))
    #expect(String(decoding: readUpTo(c, 64), as: UTF8.self) == "OK \(req.srcPort)\n")
    return (c, req.srcPort)
}

@Test func vsockConfigAndIdentity() throws {
    let d = try VsockDriver()
    #expect(d.dev.r32(VirtioMMIO.DeviceID) == 19)
    #expect(d.dev.r32(VirtioMMIO.Config) == 3 && d.dev.r32(VirtioMMIO.Config + 4) == 0)
    var st = stat()
    #expect(lstat(d.uds, &st) == 0 && st.st_mode & 0o777 == 0o600 && st.st_mode & S_IFMT == S_IFSOCK)
    d.vs.shutdownHost()
    #expect(lstat(d.uds, &st) != 0) // unlinked on teardown
    #expect(throws: VsockError.self) { try VirtioVsock(guestCID: 2, udsPath: d.dir + "/x") }
}

@Test func vsockHeaderRoundTrips() {
    let h = VsockHeader(srcCID: 3, dstCID: 2, srcPort: 7, dstPort: 1024, len: 5, op: .rw, flags: 3, bufAlloc: 99, fwdCnt: 42)
    #expect(h.bytes.count == 44 && VsockHeader(h.bytes) == h && VsockHeader(h.bytes.prefix(43)) == nil)
    #expect(h.bytes[28] == 1 && h.bytes[30] == 5) // type STREAM, op RW at their spec offsets
}

@Test func hostConnectThenDataBothWays() throws {
    let d = try VsockDriver()
    let (c, hp) = try establishFromHost(d)
    defer { close(c) }
    sendString(c, "hello")
    let pk = try d.receivedAfterPump()
    try #require(pk.count == 1)
    #expect(pk[0].0.knownOp == .rw && pk[0].0.len == 5 && pk[0].0.srcPort == hp && pk[0].0.dstPort == 1024)
    #expect(String(decoding: pk[0].1, as: UTF8.self) == "hello")
    try d.send(d.packet(.rw, src: 1024, dst: hp, len: 5), Array("world".utf8))
    #expect(String(decoding: readUpTo(c, 64), as: UTF8.self) == "world")
    // Guest closes: the client sees EOF, the guest gets its RST, the connection is gone.
    try d.send(d.packet(.shutdown, src: 1024, dst: hp, flags: 3))
    #expect(readUpTo(c, 64).isEmpty)
    #expect(try d.received().contains { $0.0.knownOp == .rst && $0.0.dstPort == 1024 })
    #expect(d.vs.connectionCount == 0)
}

@Test func hostConnectRefusedByGuestClosesClient() throws {
    let d = try VsockDriver()
    let c = unixConnect(d.uds)
    defer { close(c) }
    sendString(c, "CONNECT 4444\n")
    let req = try #require(try d.receivedAfterPump().first).0
    try d.send(d.packet(.rst, src: 4444, dst: req.srcPort))
    #expect(readUpTo(c, 64).isEmpty)
    #expect(d.vs.connectionCount == 0)
    // A malformed CONNECT line closes the client too.
    let bad = unixConnect(d.uds)
    defer { close(bad) }
    sendString(bad, "CONNEKT 1\n")
    d.pump()
    #expect(readUpTo(bad, 64).isEmpty && d.vs.pendingClientCount == 0)
}

@Test func hostToGuestRespectsGuestCredit() throws {
    let d = try VsockDriver()
    let (c, hp) = try establishFromHost(d, bufAlloc: 8)
    defer { close(c) }
    sendString(c, "0123456789abcdefghij") // 20 bytes, guest has room for 8
    var got = try d.receivedAfterPump()
    #expect(got.count == 1 && got.first?.1 == Array("01234567".utf8))
    #expect(try d.receivedAfterPump().isEmpty) // credit exhausted: device waits
    // Guest consumed 8 bytes: CREDIT_UPDATE releases the next 8.
    try d.send(d.packet(.creditUpdate, src: 1024, dst: hp, bufAlloc: 8, fwdCnt: 8))
    got = try d.receivedAfterPump()
    #expect(got.map(\.1).joined().elementsEqual(Array("89abcdef".utf8)))
    try d.send(d.packet(.creditUpdate, src: 1024, dst: hp, bufAlloc: 8, fwdCnt: 16))
    got = try d.receivedAfterPump()
    #expect(got.map(\.1).joined().elementsEqual(Array("ghij".utf8)))
}

@Test func guestMustStayWithinOurCredit() throws {
    var l = VsockLimits(); l.bufAlloc = 16
    let d = try VsockDriver(limits: l)
    let (c, hp) = try establishFromHost(d)
    defer { close(c) }
    try d.send(d.packet(.rw, src: 1024, dst: hp, len: 40), [UInt8](repeating: 1, count: 40))
    #expect(try d.received().contains { $0.0.knownOp == .rst })
    #expect(d.vs.connectionCount == 0)
    // CREDIT_REQUEST is answered with our buf_alloc.
    let (c2, hp2) = try establishFromHost(d)
    defer { close(c2) }
    try d.send(d.packet(.creditRequest, src: 1024, dst: hp2))
    let up = try #require(try d.received().first { $0.0.knownOp == .creditUpdate })
    #expect(up.0.bufAlloc == 16 && up.0.fwdCnt == 0)
}

@Test func rstForUnknownPortsAndConnections() throws {
    let d = try VsockDriver()
    try d.send(d.packet(.request, src: 5000, dst: 5555)) // nothing listens on <uds>_5555
    var pk = try d.received()
    #expect(pk.count == 1 && pk[0].0.knownOp == .rst && pk[0].0.dstPort == 5000 && pk[0].0.srcPort == 5555)
    try d.send(d.packet(.rw, src: 5000, dst: 77, len: 3), [1, 2, 3]) // no such connection
    pk = try d.received()
    #expect(pk.count == 1 && pk[0].0.knownOp == .rst)
    try d.send(d.packet(.rst, src: 5000, dst: 77)) // an RST is never answered
    #expect(try d.received().isEmpty)
}

@Test func guestInitiatedConnectionReachesHostListener() throws {
    let d = try VsockDriver()
    let l = unixListen(d.uds + "_1025")
    defer { close(l); unlink(d.uds + "_1025") }
    try d.send(d.packet(.request, src: 7000, dst: 1025))
    let resp = try #require(try d.received().first)
    #expect(resp.0.knownOp == .response && resp.0.srcPort == 1025 && resp.0.dstPort == 7000 && resp.0.srcCID == 2)
    let a = accept(l, nil, nil)
    defer { close(a) }
    var tv = timeval(tv_sec: 2, tv_usec: 0)
    setsockopt(a, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    try d.send(d.packet(.rw, src: 7000, dst: 1025, len: 4), Array("ping".utf8))
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
    #expect(readUpTo(a, 64) == Array("bye".utf8))
    try d.send(d.packet(.shutdown, src: 7000, dst: 1025, flags: 3))
    #expect(readUpTo(a, 64).isEmpty)
    #expect(d.vs.connectionCount == 0)
}

@Test func hostileTxPacketsAreRefusedWithoutCrashing() throws {
    let d = try VsockDriver()
    let (c, hp) = try establishFromHost(d)
    defer { close(c) }
    // Header descriptor shorter than a header: dropped, no reply, device still healthy.
    try d.send(d.packet(.rw, src: 1024, dst: hp, len: 0), headerDescLen: 10)
    #expect(try d.received().isEmpty && d.dev.status & VirtioMMIO.needsReset == 0)
    // len beyond the payload actually supplied: RST.
    try d.send(d.packet(.rw, src: 1024, dst: hp, len: 1000), [1, 2, 3])
    #expect(try d.received().map(\.0.op) == [VsockHeader.Op.rst.rawValue])
    #expect(d.vs.connectionCount == 0)
    // Unknown op, wrong socket type, huge len: RST each.
    try d.send(VsockHeader(srcCID: 3, dstCID: 2, srcPort: 1, dstPort: 2, op: .rw, bufAlloc: 0).withOp(99))
    var t = d.packet(.request, src: 1, dst: 2); t.type = 2
    try d.send(t)
    try d.send(d.packet(.rw, src: 1, dst: 2, len: .max), [0])
    #expect(try d.received().map(\.0.op) == Array(repeating: VsockHeader.Op.rst.rawValue, count: 3))
    // Spoofed source CID: ignored.
    var s = d.packet(.request, src: 1, dst: 2); s.srcCID = 9
    try d.send(s)
    #expect(try d.received().isEmpty && d.dev.status & VirtioMMIO.needsReset == 0)
}

@Test func connectionFloodsStayBounded() throws {
    var lim = VsockLimits(); lim.maxConnections = 16; lim.maxPendingClients = 4; lim.maxControlPackets = 64
    let d = try VsockDriver(limits: lim, rxBuffers: false) // a guest that never reads rx
    let l = unixListen(d.uds + "_9")
    defer { close(l); unlink(d.uds + "_9") }
    for i in 0..<10_000 { try d.send(d.packet(.request, src: UInt32(i), dst: UInt32(i % 2 == 0 ? 9 : 10))) }
    #expect(d.vs.connectionCount <= 16 && d.vs.controlQueueLength <= 64)
    #expect(d.dev.status & VirtioMMIO.needsReset == 0)
    // Host clients that never send their CONNECT line are capped too.
    let clients = (0..<10).map { _ in unixConnect(d.uds) }
    defer { clients.forEach { close($0) } }
    d.pump()
    #expect(d.vs.pendingClientCount <= 4)
}

extension VsockHeader {
    func withOp(_ op: UInt16) -> VsockHeader { var h = self; h.op = op; return h }
}

/// A connection drained by the vCPU thread (the guest posted rx buffers) while the serve thread
/// waits in poll on a set built when the connection was still readable — and so without POLLIN
/// for it: the poller must be told to rebuild its set, or the host's next bytes are never seen
/// and the connection stalls until the guest happens to send something.
@Test func aConnectionDrainedByTheGuestIsPolledAgain() throws {
    let d = try VsockDriver()
    let (c, _) = try establishFromHost(d)
    defer { close(c) }
    func eventually(_ cond: () -> Bool) -> Bool {
        for _ in 0..<200 { if cond() { return true }; usleep(5_000) }
        return false
    }
    // The serve loop, its deliveries finding no rx buffer (as when the guest has none posted).
    let vs = d.vs
    let serving = TestThread { vs.serve(deliver: {}) }
    sendString(c, "a")
    #expect(eventually { d.vs.hasRxWork })
    usleep(50_000)   // the loop goes around and waits again, the connection still readable
    d.dev.notify(VirtioVsock.rxQueue)   // the guest posts buffers: "a" is delivered from this thread
    #expect(try d.received().map { String(decoding: $0.1, as: UTF8.self) } == ["a"])
    sendString(c, "b")
    #expect(eventually { d.vs.hasRxWork }, "the host's next bytes were never polled for")
    d.dev.notify(VirtioVsock.rxQueue)
    #expect(try d.received().map { String(decoding: $0.1, as: UTF8.self) } == ["b"])
    d.vs.shutdownHost()
    serving.join()
}

/// A joinable thread running `body` (this test target does not link BrigLinux's Threads).
final class TestThread {
    private var thread: pthread_t = 0
    init(_ body: @escaping () -> Void) {
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        pthread_create(&thread, nil, { p in
            let b = Unmanaged<Box>.fromOpaque(p!).takeRetainedValue()
            b.body()
            return nil
        }, box)
    }
    func join() { pthread_join(thread, nil) }
    final class Box { let body: () -> Void; init(_ b: @escaping () -> Void) { body = b } }
}
