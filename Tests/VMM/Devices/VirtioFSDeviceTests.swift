import Testing
import Glibc
import BrigGuestMemory
@testable import BrigDevices

/// virtio-fs through its virtio-mmio transport and virtqueues on plain memory (no KVM).
final class FSDriver {
    let mem: GuestMemory
    let fs: VirtioFS
    let dev: VirtioMMIO
    var queues: [DriverQueue]
    let qsize: UInt16 = 64

    init(_ shares: [FSShare]) throws {
        mem = try GuestMemory(regions: [GuestRegion(guestBase: 0, size: 0x100000)])
        fs = try VirtioFS(tag: "brig", server: try FileServer(shares: shares))
        let m = mem
        queues = (0..<2).map { DriverQueue(mem: m, size: 64, base: 0x1000 + UInt64($0) * 0x3000) }
        dev = VirtioMMIO(device: fs, memory: mem, irq: nil)
        dev.w32(VirtioMMIO.Status, VirtioMMIO.acknowledge | VirtioMMIO.driver)
        dev.w32(VirtioMMIO.DriverFeaturesSel, 1); dev.w32(VirtioMMIO.DriverFeatures, 1)
        dev.w32(VirtioMMIO.Status, VirtioMMIO.acknowledge | VirtioMMIO.driver | VirtioMMIO.featuresOK)
        for q in 0..<2 {
            dev.w32(VirtioMMIO.QueueSel, UInt32(q)); dev.w32(VirtioMMIO.QueueNum, UInt32(qsize))
            dev.w32(VirtioMMIO.QueueDescLow, UInt32(queues[q].desc)); dev.w32(VirtioMMIO.QueueDriverLow, UInt32(queues[q].avail))
            dev.w32(VirtioMMIO.QueueDeviceLow, UInt32(queues[q].used)); dev.w32(VirtioMMIO.QueueReady, 1)
        }
        dev.w32(VirtioMMIO.Status, VirtioMMIO.acknowledge | VirtioMMIO.driver | VirtioMMIO.featuresOK | VirtioMMIO.driverOK)
    }

    /// One request split into readable pieces of `split` bytes, a reply area of `room` bytes in
    /// two writable descriptors; returns the used length and the reply bytes.
    func request(_ frame: [UInt8], split: Int = 7, room: Int = 4096) throws -> (UInt32, [UInt8]) {
        try mem.write(frame, at: 0x40000)
        var i: UInt16 = 0, off = 0
        while off < frame.count {
            let n = min(split, frame.count - off)
            try queues[1].setDesc(i, addr: 0x40000 + UInt64(off), len: UInt32(n), flags: Virtqueue.descNext, next: i + 1)
            off += n; i += 1
        }
        try queues[1].setDesc(i, addr: 0x60000, len: 16, flags: Virtqueue.descWrite | Virtqueue.descNext, next: i + 1)
        try queues[1].setDesc(i + 1, addr: 0x70000, len: UInt32(room - 16), flags: Virtqueue.descWrite)
        try queues[1].publish(0)
        let before = try queues[1].usedIdx()
        dev.notify(VirtioFS.requestQueue)
        guard try queues[1].usedIdx() == before &+ 1 else { return (0, []) }
        let (_, len) = try queues[1].usedElem(before)
        let head = try mem.read(0x60000, count: min(16, Int(len)))
        let rest = Int(len) > 16 ? try mem.read(0x70000, count: Int(len) - 16) : []
        return (len, head + rest)
    }
}

func fuseFrame(_ op: Fuse.Op, unique: UInt64, node: UInt64, _ body: [UInt8]) -> [UInt8] {
    FuseInHeader(length: UInt32(40 + body.count), opcode: op.rawValue, unique: unique, nodeID: node).bytes + body
}

@Test func virtioFSConfigSpaceHasTheTagAndOneRequestQueue() throws {
    let t = TempTree()
    let d = try FSDriver([FSShare(source: t.path, readOnly: false)])
    #expect(d.fs.deviceType == 26)
    var cfg = [UInt8](repeating: 0xFF, count: 40)
    cfg.withUnsafeMutableBytes { d.fs.readConfig(offset: 0, into: $0) }
    #expect(Array(cfg[0..<4]) == Array("brig".utf8) && cfg[4..<36].allSatisfy { $0 == 0 } && Array(cfg[36..<40]) == [1, 0, 0, 0])
    #expect(throws: (any Error).self) { try VirtioFS(tag: String(repeating: "t", count: 37), server: try FileServer(shares: [])) }
}

@Test func requestsSplitAcrossDescriptorsAreServed() throws {
    let t = TempTree()
    t.file("hello", "hi there")
    let d = try FSDriver([FSShare(source: t.path, readOnly: false)])
    var w = FuseWriter(); w.u32(7); w.u32(31); w.u32(0); w.u32(0xFFFF_FFFF); w.zeros(48)
    let (ilen, initReply) = try d.request(fuseFrame(.initialize, unique: 1, node: 0, w.bytes))
    #expect(ilen == 16 + 64 && initReply[4..<8] == [0, 0, 0, 0])
    let (llen, lookup) = try d.request(fuseFrame(.lookup, unique: 2, node: 1, Array("0".utf8) + [0]), split: 3)
    #expect(llen == 16 + 128 && lookup[4..<8] == [0, 0, 0, 0])
    // A reply area too small for the attributes: ERANGE in the header alone.
    let (slen, sreply) = try d.request(fuseFrame(.getattr, unique: 3, node: 1, [UInt8](repeating: 0, count: 16)), room: 17)
    #expect(slen == 16 && sreply[4] == UInt8(truncatingIfNeeded: -ERANGE))
    func errno(_ r: [UInt8]) -> Int32 { -Int32(bitPattern: UInt32(r[4]) | UInt32(r[5]) << 8 | UInt32(r[6]) << 16 | UInt32(r[7]) << 24) }
    // A WRITE on a handle never opened.
    let (blen, berr) = try d.request(fuseFrame(.write, unique: 4, node: 2, [UInt8](repeating: 0, count: 40)), split: 4096)
    #expect(blen == 16 && errno(berr) == EBADF)
    // A chain bigger than max_write plus headers (five readable 256 KiB buffers over the same
    // memory) is answered from its header alone.
    try d.mem.write(fuseFrame(.write, unique: 5, node: 2, [UInt8](repeating: 0, count: 40)), at: 0x40000)
    for i in 0..<UInt16(5) { try d.queues[1].setDesc(i, addr: 0x40000, len: 0x40000, flags: Virtqueue.descNext, next: i + 1) }
    try d.queues[1].setDesc(5, addr: 0x90000, len: 64, flags: Virtqueue.descWrite)
    try d.queues[1].publish(0)
    d.dev.notify(VirtioFS.requestQueue)
    let (_, olen) = try d.queues[1].usedElem(try d.queues[1].usedIdx() &- 1)
    let oreply = try d.mem.read(0x90000, count: 16)
    #expect(olen == 16 && errno(oreply) == EINVAL)
    #expect(d.dev.lastError == nil)
}

/// Random descriptors on both queues: the device never crashes and never writes outside the
/// writable buffers it was given (a canary region no descriptor points at stays intact).
@Test func virtioFSRandomDescriptorsNeverEscapeGuestMemory() throws {
    let t = TempTree()
    t.file("a", "x")
    var rng = SystemRandomNumberGenerator()
    for round in 0..<150 {
        let d = try FSDriver([FSShare(source: t.path, readOnly: round % 2 == 0)])
        try d.mem.write([UInt8](repeating: 0xA5, count: 0x40000), at: 0xC0000)
        var w = FuseWriter(); w.u32(7); w.u32(31); w.u32(0); w.u32(0); w.zeros(48)
        if round % 3 != 0 { _ = try d.request(fuseFrame(.initialize, unique: 1, node: 0, w.bytes)) }
        let frames = [fuseFrame(.lookup, unique: 9, node: 1, [48, 0]), fuseFrame(.readdirplus, unique: 9, node: 1, [UInt8](repeating: 0xFF, count: 40)),
                      fuseFrame(.read, unique: 9, node: 2, [UInt8](repeating: 0xFF, count: 40))]
        try d.mem.write(frames.randomElement(using: &rng)!, at: 0x40000)
        for i in 0..<d.qsize {
            for q in 0..<2 {
                let addr: UInt64 = [0x40000, 0x60000, 0x9FFF0, 0x100000, 0xFFFF_FFFF_FFFF_F000, UInt64.random(in: 0x40000..<0xB0000, using: &rng)].randomElement(using: &rng)!
                let len = [0, 1, 15, 16, 40, 41, 0x10000, UInt32.max, UInt32.random(in: 0...0x8000, using: &rng)].randomElement(using: &rng)!
                let safeLen = addr >= 0x40000 && addr < 0xC0000 ? min(UInt64(len), 0xC0000 - addr) : UInt64(len)
                try d.queues[q].setDesc(i, addr: addr, len: UInt32(truncatingIfNeeded: safeLen), flags: UInt16.random(in: 0...7, using: &rng),
                                        next: UInt16.random(in: 0...(d.qsize + 2), using: &rng))
            }
        }
        for _ in 0..<Int.random(in: 1...20, using: &rng) {
            let q = Int.random(in: 0...1, using: &rng)
            try d.queues[q].publish(UInt16.random(in: 0...(d.qsize + 1), using: &rng))
            if Bool.random(using: &rng) { try d.mem.store(UInt16.random(in: 0...UInt16.max, using: &rng), at: d.queues[q].avail + 2) }
            d.dev.notify(q)
        }
        #expect(try d.mem.read(0xC0000, count: 0x40000).allSatisfy { $0 == 0xA5 })
        #expect(t.read("a") == "x" || round % 2 == 1)
    }
}

/// The node limit always leaves the fds for handles and the rest of the VMM under RLIMIT_NOFILE.
@Test func fileLimitBoundsTheNodes() {
    let l = VirtioFS.raiseFileLimit(FileServerLimits())
    var rl = rlimit()
    _ = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl)
    #expect(l.maxNodes <= FileServerLimits().maxNodes)
    #expect(l.maxNodes == 256 || l.maxNodes + l.maxHandles + 256 <= Int(clamping: rl.rlim_cur))
}
