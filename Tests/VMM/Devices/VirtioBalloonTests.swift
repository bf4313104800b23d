import Testing
import Glibc
import BrigGuestMemory
@testable import BrigDevices

/// A virtio-balloon device with its reporting queue (2) at a DriverQueue, over 1 MiB of plain
/// memory filled with a canary at 0x10000..<0x100000.
struct BalloonFixture {
    static let canary: UInt8 = 0x5A
    let mem: GuestMemory, irq = CountingIRQ(), balloon = VirtioBalloon(), dev: VirtioMMIO
    var drv: DriverQueue
    init(queue: Int = VirtioBalloon.reportingQueue) throws {
        mem = try plainMemory()
        try mem.write([UInt8](repeating: Self.canary, count: 0xF0000), at: 0x10000)
        dev = VirtioMMIO(device: balloon, memory: mem, irq: irq)
        drv = DriverQueue(mem: mem)
        dev.w32(VirtioMMIO.Status, VirtioMMIO.acknowledge | VirtioMMIO.driver)
        dev.w32(VirtioMMIO.DriverFeaturesSel, 0); dev.w32(VirtioMMIO.DriverFeatures, UInt32(VirtioBalloon.featureReporting))
        dev.w32(VirtioMMIO.DriverFeaturesSel, 1); dev.w32(VirtioMMIO.DriverFeatures, 1)
        dev.w32(VirtioMMIO.Status, VirtioMMIO.acknowledge | VirtioMMIO.driver | VirtioMMIO.featuresOK)
        dev.w32(VirtioMMIO.QueueSel, UInt32(queue))
        dev.w32(VirtioMMIO.QueueNum, UInt32(drv.size))
        dev.w32(VirtioMMIO.QueueDescLow, UInt32(drv.desc)); dev.w32(VirtioMMIO.QueueDescHigh, 0)
        dev.w32(VirtioMMIO.QueueDriverLow, UInt32(drv.avail)); dev.w32(VirtioMMIO.QueueDeviceLow, UInt32(drv.used))
        dev.w32(VirtioMMIO.QueueReady, 1)
        dev.w32(VirtioMMIO.Status, VirtioMMIO.acknowledge | VirtioMMIO.driver | VirtioMMIO.featuresOK | VirtioMMIO.driverOK)
    }

    /// One chain of `bufs` (device-writable unless said) on `queue`; returns the used length.
    mutating func post(_ bufs: [(addr: UInt64, len: UInt32, writable: Bool)], queue: Int = VirtioBalloon.reportingQueue) throws -> UInt32 {
        for (i, b) in bufs.enumerated() {
            let last = i == bufs.count - 1
            try drv.setDesc(UInt16(i), addr: b.addr, len: b.len,
                            flags: (last ? 0 : Virtqueue.descNext) | (b.writable ? Virtqueue.descWrite : 0), next: UInt16(i + 1))
        }
        try drv.publish(0)
        dev.w32(VirtioMMIO.QueueNotify, UInt32(queue))
        let idx = try drv.usedIdx()
        #expect(idx == drv.availIdx, "report not returned used")
        return try drv.usedElem(idx &- 1).len
    }

    func intact(_ addr: UInt64, _ count: Int) -> Bool { (try? mem.read(addr, count: count))?.allSatisfy { $0 == Self.canary } ?? false }
    func zeros(_ addr: UInt64, _ count: Int) -> Bool { (try? mem.read(addr, count: count))?.allSatisfy { $0 == 0 } ?? false }

    /// How many of the pages of `[addr, addr+count)` are resident in this process (mincore).
    func residentPages(_ addr: UInt64, _ count: Int) throws -> Int {
        let p = try mem.hostPointer(addr, length: UInt64(count))
        var vec = [UInt8](repeating: 0, count: (count + 4095) / 4096)
        #expect(mincore(p, count, &vec) == 0)
        return vec.filter { $0 & 1 != 0 }.count
    }
}

@Test func balloonIdentifiesAsBalloonOfferingOnlyFreePageReporting() throws {
    let f = try BalloonFixture()
    #expect(f.dev.r32(VirtioMMIO.DeviceID) == 5)
    f.dev.w32(VirtioMMIO.DeviceFeaturesSel, 0)
    #expect(f.dev.r32(VirtioMMIO.DeviceFeatures) == 1 << 5)
    f.dev.w32(VirtioMMIO.DeviceFeaturesSel, 1)
    #expect(f.dev.r32(VirtioMMIO.DeviceFeatures) == 1)            // VERSION_1
    for q in 0..<3 { f.dev.w32(VirtioMMIO.QueueSel, UInt32(q)); #expect(f.dev.r32(VirtioMMIO.QueueNumMax) >= 32) }
    f.dev.w32(VirtioMMIO.QueueSel, 3)
    #expect(f.dev.r32(VirtioMMIO.QueueNumMax) == 0)
    // num_pages and actual read 0, and the driver's write of actual changes nothing.
    f.dev.w32(VirtioMMIO.Config + 4, 1234)
    #expect(f.dev.r32(VirtioMMIO.Config) == 0 && f.dev.r32(VirtioMMIO.Config + 4) == 0)
}

@Test func reportedPagesReadAsZerosAndLeaveTheResidentSet() throws {
    var f = try BalloonFixture()
    #expect(try f.residentPages(0x20000, 0x10000) == 16)
    // Two free blocks in one report: 0x20000 + 64 KiB and 0x40000 + 8 KiB.
    #expect(try f.post([(0x20000, 0x10000, true), (0x40000, 0x2000, true)]) == 0)
    #expect(f.irq.fired == 1 && f.dev.lastError == nil)
    #expect(try f.residentPages(0x20000, 0x10000) == 0 && f.balloon.discardedBytes == 0x12000)
    #expect(f.zeros(0x20000, 0x10000) && f.zeros(0x40000, 0x2000))
    #expect(f.intact(0x10000, 0x10000) && f.intact(0x30000, 0x10000) && f.intact(0x42000, 0xBE000))
    // The guest uses a reported page again: it is there, zero-filled, and keeps what is written.
    try f.mem.store(UInt32(0xFEED), at: 0x20010)
    #expect(try f.mem.load(UInt32.self, at: 0x20010) == 0xFEED)
}

@Test func onlyWholePagesOfWritableBuffersInRAMAreGivenBack() throws {
    var f = try BalloonFixture()
    // Unaligned ends: only the page 0x21000 lies wholly inside [0x20800, 0x22800).
    #expect(try f.post([(0x20800, 0x2000, true)]) == 0)
    #expect(f.intact(0x20800, 0x800) && f.zeros(0x21000, 0x1000) && f.intact(0x22000, 0x800))
    // Device-readable, zero-length and sub-page buffers give nothing back.
    #expect(try f.post([(0x30000, 0x1000, false), (0x31000, 0, true), (0x32000, 0xFFF, true)]) == 0)
    #expect(f.intact(0x30000, 0x3000) && f.balloon.discardedBytes == 0x1000)
}

@Test func reportsOutsideRAMFailInTheQueueAndInflateOrDeflateChangesNothing() throws {
    var f = try BalloonFixture()
    try f.drv.setDesc(0, addr: 0xFF000, len: 0x2000, flags: Virtqueue.descWrite)   // past the end of RAM
    try f.drv.publish(0)
    f.dev.w32(VirtioMMIO.QueueNotify, UInt32(VirtioBalloon.reportingQueue))
    #expect(f.dev.lastError == .bufferOutOfBounds(index: 0, address: 0xFF000, length: 0x2000))
    #expect(f.dev.r32(VirtioMMIO.Status) & VirtioMMIO.needsReset != 0)
    #expect(f.intact(0x10000, 0xF0000) && f.balloon.discardedBytes == 0)
    for q in [VirtioBalloon.inflateQueue, VirtioBalloon.deflateQueue] {
        var g = try BalloonFixture(queue: q)
        // An inflate chain lists page frame numbers (u32): the device returns it and frees nothing.
        try g.mem.store(UInt32(0x20), at: 0x10000)
        #expect(try g.post([(0x10000, 4, false), (0x20000, 0x10000, true)], queue: q) == 0)
        #expect(g.intact(0x10004, 0xEFFFC) && g.balloon.discardedBytes == 0 && g.dev.lastError == nil)
    }
    var q = f.drv.deviceQueue
    #expect(try !f.balloon.process(queue: 3, &q, memory: f.mem))
}

/// Random report chains: the device never crashes, gives back only whole pages inside the
/// writable buffers it was given, and never touches the canary range no descriptor points at.
@Test func randomReportsNeverEscapeTheirBuffers() throws {
    var rng = SystemRandomNumberGenerator()
    for _ in 0..<150 {
        var f = try BalloonFixture()
        try f.drv.randomize(addrs: [0x40000, 0x60800, 0x9F000, 0xBFFFF, 0x100000, 0xFFFF_FFFF_FFFF_F000],
                            lens: [0, 1, 0x1000, 0x2000, 0x10000, 0x20000, UInt32.max], safe: 0x40000..<0xC0000, rng: &rng)
        for _ in 0..<Int.random(in: 1...Int(f.drv.size), using: &rng) {
            try f.drv.publish(UInt16.random(in: 0...(f.drv.size + 1), using: &rng))
            f.dev.notify(VirtioBalloon.reportingQueue)
        }
        #expect(f.intact(0x10000, 0x30000) && f.intact(0xC0000, 0x40000))
        // (A chain taken twice — a random avail idx — counts its pages twice: whole pages only.)
        #expect(f.balloon.discardedBytes % 4096 == 0)
        #expect(try f.residentPages(0x10000, 0x30000) == 0x30 && f.residentPages(0xC0000, 0x40000) == 0x40)
    }
}
