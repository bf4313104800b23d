import Testing
import BrigGuestMemory
@testable import BrigDevices

/// An in-memory vsock backend: the production connection table with host ends that are byte
/// buffers instead of sockets. `step()` is its "host thread": it opens the guest's connects
/// (on ports in `listening`), lets each host end take up to `hostWindow` bytes, hands the
/// guest what the host ends sent (within the guest's credit), and closes retired ends.
final class MemoryVsockBackend: VsockBackend, @unchecked Sendable {
    var table: VsockConnectionTable<Int>
    var listening: Set<UInt32> = []
    var hostWindow = Int.max
    /// Per host end: bytes it received, bytes it still wants to send, whether it is closed or
    /// its write side shut.
    var got: [Int: [UInt8]] = [:], outbox: [Int: [UInt8]] = [:], eof: Set<Int> = []
    var closed: Set<Int> = [], writeShut: Set<Int> = []
    var nextHandle = 1

    init(limits: VsockLimits = VsockLimits()) { table = VsockConnectionTable(guestCID: VsockDriver.cid, limits: limits) }

    func send(_ packet: VsockPacket) { table.guestSent(packet) }
    func receive(room: Int) -> VsockPacket? { table.nextRx(room: room) }
    var hasPendingRx: Bool { table.hasPendingRx }

    func newHandle() -> Int { nextHandle += 1; return nextHandle }

    /// A host client asking for guest port `port`; nil when refused.
    func clientConnect(_ port: UInt32) -> Int? {
        let h = newHandle()
        return table.hostConnected(h, toGuestPort: port) ? h : nil
    }

    func key(_ handle: Int) -> VsockKey? { table.connections.first { $0.value.handle == handle }?.key }

    func step() {
        let requests = table.connects
        table.connects = []
        for r in requests { table.hostOpened(r, listening.contains(r.dstPort) ? newHandle() : nil) }
        for (k, c) in table.connections {
            let n = min(c.toHost.count, hostWindow)
            if n > 0 { got[c.handle, default: []] += c.toHost.prefix(n); table.hostTook(k, n) }
            let budget = c.readBudget(table.limits)
            if let out = outbox[c.handle], !out.isEmpty, budget > 0 {
                let m = min(out.count, budget)
                table.hostSent(k, Array(out.prefix(m)))
                outbox[c.handle] = Array(out.dropFirst(m))
            } else if eof.contains(c.handle), (outbox[c.handle] ?? []).isEmpty, budget > 0 {
                table.hostSent(k, [])
                eof.remove(c.handle)
            }
        }
        for (k, c) in table.connections where c.wantsHostWriteShutdown { writeShut.insert(c.handle); table.hostWriteShut(k) }
        for r in table.retired { got[r.handle, default: []] += r.bytes; closed.insert(r.handle) }
        table.retired = []
    }
}

/// Device + connection table + fake guest driver, all in memory (no sockets, no threads).
@Suite struct VsockMemoryTests {
    let b: MemoryVsockBackend
    let d: VsockDriver

    init() throws { try self.init(limits: VsockLimits()) }
    init(limits: VsockLimits, rxBuffers: Bool = true) throws {
        let b = MemoryVsockBackend(limits: limits)
        self.b = b
        d = try VsockDriver(backend: b, maxPayload: Int(limits.bufAlloc), rxBuffers: rxBuffers) { b.step() }
    }

    /// A host client on guest port 1024, accepted by the guest: (host end, host port).
    func established(bufAlloc: UInt32 = 64 << 10) throws -> (Int, UInt32) {
        let h = try #require(b.clientConnect(1024))
        let req = try #require(try d.receivedAfterPump().first).0
        #expect(req.knownOp == .request && req.srcCID == 2 && req.dstCID == VsockDriver.cid && req.dstPort == 1024)
        #expect(req.srcPort >= VirtioVsock.firstEphemeralPort && req.bufAlloc == b.table.limits.bufAlloc)
        try d.send(d.packet(.response, src: 1024, dst: req.srcPort, bufAlloc: bufAlloc))
        #expect(b.got[h] == nil) // nothing written on the tx path
        let window = b.hostWindow
        b.hostWindow = .max
        defer { b.hostWindow = window }
        d.pump()
        #expect(String(decoding: b.got[h] ?? [], as: UTF8.self) == "OK \(req.srcPort)\n")
        b.got[h] = nil
        return (h, req.srcPort)
    }

    @Test func connectBothWaysAndData() throws {
        let (h, hp) = try established()
        b.outbox[h] = Array("hello".utf8)
        let pk = try d.receivedAfterPump()
        #expect(pk.count == 1 && pk[0].0.knownOp == .rw && pk[0].0.srcPort == hp && pk[0].0.dstPort == 1024 && pk[0].1 == Array("hello".utf8))
        try d.send(d.packet(.rw, src: 1024, dst: hp, len: 5), Array("world".utf8))
        d.pump()
        #expect(b.got[h] == Array("world".utf8))
        // Guest-initiated: RESPONSE once the host end is open; RST where nothing listens.
        b.listening = [1025]
        try d.send(d.packet(.request, src: 7000, dst: 1025, bufAlloc: 4096))
        try d.send(d.packet(.request, src: 7001, dst: 1026))
        #expect(try d.received().isEmpty)
        let replies = try d.receivedAfterPump()
        #expect(replies.map(\.0.knownOp) == [.response, .rst])
        #expect(replies[0].0.srcPort == 1025 && replies[0].0.dstPort == 7000 && replies[0].0.bufAlloc == b.table.limits.bufAlloc)
        #expect(replies[1].0.dstPort == 7001)
        #expect(b.table.connections.count == 2)
        // A guest that resets while its connect is under way gets nothing; the host end is closed.
        try d.send(d.packet(.request, src: 7002, dst: 1025))
        try d.send(d.packet(.rst, src: 7002, dst: 1025))
        #expect(try d.receivedAfterPump().isEmpty && b.table.connections.count == 2 && b.closed.count == 1)
    }

    @Test func hostToGuestStaysWithinTheGuestsCredit() throws {
        let (h, hp) = try established(bufAlloc: 8)
        b.outbox[h] = Array("0123456789abcdefghij".utf8)
        var got = try d.receivedAfterPump()
        #expect(got.map(\.1) == [Array("01234567".utf8)])
        #expect(try d.receivedAfterPump().isEmpty && b.outbox[h]?.count == 12) // the rest stays with the host
        try d.send(d.packet(.creditUpdate, src: 1024, dst: hp, bufAlloc: 8, fwdCnt: 8))
        got = try d.receivedAfterPump()
        #expect(got.map(\.1).joined().elementsEqual(Array("89abcdef".utf8)))
        try d.send(d.packet(.creditUpdate, src: 1024, dst: hp, bufAlloc: 8, fwdCnt: 16))
        got = try d.receivedAfterPump()
        #expect(got.map(\.1).joined().elementsEqual(Array("ghij".utf8)))
        // An inconsistent peer (fwd_cnt ahead of what was sent) gets nothing.
        b.outbox[h] = [1]
        try d.send(d.packet(.creditUpdate, src: 1024, dst: hp, bufAlloc: 8, fwdCnt: 99))
        #expect(try d.receivedAfterPump().isEmpty)
    }

    @Test func guestToHostCreditIsEnforcedAndReported() throws {
        var l = VsockLimits(); l.bufAlloc = 16
        let t = try VsockMemoryTests(limits: l)
        let (h, hp) = try t.established()
        // The host takes nothing: 16 bytes fit our buffer, one more is an overrun (RST).
        t.b.hostWindow = 0
        try t.d.send(t.d.packet(.rw, src: 1024, dst: hp, len: 16), [UInt8](repeating: 7, count: 16))
        t.d.pump()
        #expect(try t.d.received().isEmpty && t.b.table.connections.count == 1)
        try t.d.send(t.d.packet(.rw, src: 1024, dst: hp, len: 1), [8])
        #expect(try t.d.received().map(\.0.knownOp) == [.rst])
        t.b.step()
        #expect(t.b.table.connections.isEmpty && t.b.closed == [h])
        // Forwarding a quarter of the buffer sends CREDIT_UPDATE; CREDIT_REQUEST is answered.
        let (h2, hp2) = try t.established()
        t.b.hostWindow = .max
        try t.d.send(t.d.packet(.rw, src: 1024, dst: hp2, len: 4), [1, 2, 3, 4])
        let up = try t.d.receivedAfterPump()
        #expect(up.map(\.0.knownOp) == [.creditUpdate] && up.first?.0.fwdCnt == 4 && up.first?.0.bufAlloc == 16)
        #expect(t.b.got[h2] == [1, 2, 3, 4])
        try t.d.send(t.d.packet(.creditRequest, src: 1024, dst: hp2))
        #expect(try t.d.received().map(\.0.fwdCnt) == [4])
    }

    @Test func shutdownAndReset() throws {
        let (h, hp) = try established()
        // Host EOF: data first, then SHUTDOWN(SEND); the guest may still send.
        b.outbox[h] = [9, 9]; b.eof = [h]
        var pk = try d.receivedAfterPump()
        #expect(pk.map(\.0.knownOp) == [.rw, .shutdown] && pk.last?.0.flags == VsockHeader.shutdownSend)
        try d.send(d.packet(.rw, src: 1024, dst: hp, len: 2), [1, 2])
        // Guest SHUTDOWN(SEND): the host end's write side is shut once its bytes are out.
        b.hostWindow = 1
        try d.send(d.packet(.shutdown, src: 1024, dst: hp, flags: VsockHeader.shutdownSend))
        b.step()
        #expect(b.got[h] == [1] && b.writeShut.isEmpty)
        b.step()
        #expect(b.got[h] == [1, 2] && b.writeShut == [h])
        // Guest closes both ways with bytes still buffered: they go out, the end is closed, RST confirms.
        let (h2, hp2) = try established()
        b.hostWindow = 0
        try d.send(d.packet(.rw, src: 1024, dst: hp2, len: 3), [4, 5, 6])
        try d.send(d.packet(.shutdown, src: 1024, dst: hp2, flags: 3))
        pk = try d.receivedAfterPump()
        #expect(pk.map(\.0.knownOp) == [.rst] && b.got[h2] == [4, 5, 6] && b.closed.contains(h2))
        // A guest RST closes the host end and is never answered.
        let (h3, hp3) = try established()
        try d.send(d.packet(.rst, src: 1024, dst: hp3))
        #expect(try d.receivedAfterPump().isEmpty && b.closed.contains(h3))
        // A host end that breaks resets the connection towards the guest.
        let (h4, hp4) = try established()
        b.table.hostFailed(try #require(b.key(h4)))
        pk = try d.receivedAfterPump()
        #expect(pk.map(\.0.knownOp) == [.rst] && pk.first?.0.srcPort == hp4 && b.closed.contains(h4))
        #expect(b.table.connections.count == 1) // only the half-closed first one
    }

    @Test func hostilePacketsAreRefused() throws {
        let (_, hp) = try established()
        // A header descriptor shorter than a header: dropped, no reply, device healthy.
        try d.send(d.packet(.rw, src: 1024, dst: hp, len: 0), headerDescLen: 10)
        #expect(try d.received().isEmpty && d.dev.status & VirtioMMIO.needsReset == 0)
        // len beyond the payload supplied: RST, connection gone.
        try d.send(d.packet(.rw, src: 1024, dst: hp, len: 1000), [1, 2, 3])
        #expect(try d.received().map(\.0.knownOp) == [.rst])
        #expect(b.table.connections.isEmpty)
        // Unknown op, wrong type, huge len, data or RESPONSE on no connection: RST each.
        try d.send(VsockHeader(srcCID: 3, dstCID: 2, srcPort: 1, dstPort: 2, op: .rw).withOp(99))
        var t = d.packet(.request, src: 1, dst: 2); t.type = 2
        try d.send(t)
        try d.send(d.packet(.rw, src: 1, dst: 2, len: .max), [0])
        try d.send(d.packet(.rw, src: 1, dst: 2, len: 1), [0])
        try d.send(d.packet(.response, src: 1, dst: 2))
        #expect(try d.received().map(\.0.knownOp) == Array(repeating: .rst, count: 5))
        // Spoofed source CID or a wrong destination CID from a foreign source: ignored.
        var s = d.packet(.request, src: 1, dst: 2); s.srcCID = 9
        try d.send(s)
        #expect(try d.received().isEmpty && b.table.connects.isEmpty)
        // RW before the guest accepted, a second REQUEST for a live connection, RESPONSE twice: RST.
        let h = try #require(b.clientConnect(1024))
        let req = try #require(try d.receivedAfterPump().first).0
        try d.send(d.packet(.rw, src: 1024, dst: req.srcPort, len: 1), [1])
        #expect(try d.received().map(\.0.knownOp) == [.rst] && b.key(h) == nil)
        let (_, hp2) = try established()
        try d.send(d.packet(.request, src: 1024, dst: hp2))
        #expect(try d.received().map(\.0.knownOp) == [.rst] && b.table.connections.isEmpty)
        let (_, hp3) = try established()
        try d.send(d.packet(.response, src: 1024, dst: hp3))
        #expect(try d.received().map(\.0.knownOp) == [.rst] && b.table.connections.isEmpty)
    }

    @Test func limitsBoundAGuestThatFloodsOrNeverReads() throws {
        var l = VsockLimits(); l.maxConnections = 4; l.maxControlPackets = 8
        let t = try VsockMemoryTests(limits: l, rxBuffers: false)
        t.b.listening = [9]
        for i in 0..<1_000 { try t.d.send(t.d.packet(.request, src: UInt32(i), dst: 9)) }
        t.b.step()
        #expect(t.b.table.connections.count == 4 && t.b.table.control.count == 8)
        #expect(t.b.clientConnect(1) == nil) // host clients count against the same limit
        #expect(t.d.dev.status & VirtioMMIO.needsReset == 0)
    }

    @Test func rxBuffersTooSmallComeBackEmptyAndPacketsWait() throws {
        let t = try VsockMemoryTests(limits: VsockLimits(), rxBuffers: false)
        _ = try #require(t.b.clientConnect(1024))
        t.d.dev.notify(0)
        #expect(t.b.table.control.count == 1) // no rx buffers: the REQUEST waits
        try t.d.setDesc(0, 0, addr: VsockDriver.rxBuf, len: 10, flags: Virtqueue.descWrite)
        try t.d.publish(0, 0)
        t.d.dev.notify(0)
        let used = t.d.desc(0) + 0x2000
        #expect(try t.d.mem.load(UInt16.self, at: used + 2) == 1 && (try t.d.mem.load(UInt32.self, at: used + 8)) == 0)
        try t.d.setDesc(0, 1, addr: VsockDriver.rxBuf, len: VsockDriver.rxLen, flags: Virtqueue.descWrite)
        try t.d.publish(0, 1)
        t.d.dev.notify(0)
        #expect(try t.d.mem.load(UInt16.self, at: used + 2) == 2 && t.b.table.control.isEmpty)
        #expect(t.d.dev.r32(VirtioMMIO.DeviceID) == 19 && t.d.dev.r32(VirtioMMIO.Config) == 3)
    }
}
