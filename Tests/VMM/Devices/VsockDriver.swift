import Testing
import Glibc
import BrigGuestMemory
@testable import BrigDevices

/// A polled guest virtio-vsock driver on plain memory: three queues of 64 entries, 16 rx
/// buffers of 4 KiB, tx packets as a header descriptor plus a payload descriptor. The device's
/// backend is `backend`; `pump` stands for the backend's own host-side thread.
class VsockDriver {
    static let cid: UInt64 = 3
    let mem: GuestMemory
    let vs: VirtioVsock
    let dev: VirtioMMIO
    let pumpHost: () -> Void
    let qsize: UInt16 = 64
    var availIdx: [UInt16] = [0, 0, 0]
    var rxSeen: UInt16 = 0
    static let rxBuf: UInt64 = 0x20000, rxLen: UInt32 = 4096, rxCount: UInt16 = 16
    static let txHdr: UInt64 = 0x40000, txData: UInt64 = 0x41000

    init(backend: any VsockBackend, maxPayload: Int = Int(VsockLimits().bufAlloc), rxBuffers: Bool = true,
         pump: @escaping () -> Void) throws {
        mem = try GuestMemory(regions: [GuestRegion(guestBase: 0, size: 0x100000)])
        vs = try VirtioVsock(guestCID: Self.cid, backend: backend, maxPayload: maxPayload)
        pumpHost = pump
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

    /// A few rounds of the backend's host side and rx delivery, as its thread would do.
    func pump(rounds: Int = 4) {
        for _ in 0..<rounds { pumpHost(); dev.notify(0) }
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

extension VsockHeader {
    func withOp(_ op: UInt16) -> VsockHeader { var h = self; h.op = op; return h }
}
