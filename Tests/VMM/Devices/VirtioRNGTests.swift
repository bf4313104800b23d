import Testing
import Glibc
import Synchronization
import BrigGuestMemory
@testable import BrigDevices

/// A virtio-rng device brought up with its request queue at a DriverQueue, over plain memory
/// whose 0xC0000..<0x100000 is a canary no well-formed request points at.
struct RNGFixture {
    static let canary: UInt8 = 0xA5
    let mem: GuestMemory, irq = CountingIRQ(), rng: VirtioRNG, dev: VirtioMMIO
    var drv: DriverQueue
    init(_ rng: VirtioRNG = VirtioRNG()) throws {
        mem = try plainMemory()
        try mem.write([UInt8](repeating: Self.canary, count: 0xF0000), at: 0x10000)
        self.rng = rng
        dev = VirtioMMIO(device: rng, memory: mem, irq: irq)
        drv = DriverQueue(mem: mem)
        bringUp(dev, drv)
    }

    /// Publishes descriptors 0…n-1 as one chain and notifies; returns the used length.
    mutating func request(_ bufs: [(addr: UInt64, len: UInt32, writable: Bool)]) throws -> UInt32 {
        for (i, b) in bufs.enumerated() {
            let last = i == bufs.count - 1
            try drv.setDesc(UInt16(i), addr: b.addr, len: b.len,
                            flags: (last ? 0 : Virtqueue.descNext) | (b.writable ? Virtqueue.descWrite : 0), next: UInt16(i + 1))
        }
        try drv.publish(0)
        dev.w32(VirtioMMIO.QueueNotify, 0)
        let idx = try drv.usedIdx()
        #expect(idx == drv.availIdx, "request not returned used")
        return try drv.usedElem(idx &- 1).len
    }

    func intact(_ addr: UInt64, _ count: Int) -> Bool { (try? mem.read(addr, count: count))?.allSatisfy { $0 == Self.canary } ?? false }
}

@Test func rngIdentifiesAsEntropyDeviceWithOneQueueAndNoConfig() throws {
    let f = try RNGFixture()
    #expect(f.dev.r32(VirtioMMIO.DeviceID) == 4)
    f.dev.w32(VirtioMMIO.DeviceFeaturesSel, 0)
    #expect(f.dev.r32(VirtioMMIO.DeviceFeatures) == 0)
    f.dev.w32(VirtioMMIO.QueueSel, 0)
    #expect(f.dev.r32(VirtioMMIO.QueueNumMax) == 256)
    f.dev.w32(VirtioMMIO.QueueSel, 1)
    #expect(f.dev.r32(VirtioMMIO.QueueNumMax) == 0)
    #expect(f.dev.r32(VirtioMMIO.Config) == 0 && f.dev.r32(VirtioMMIO.Config + 4) == 0)
    #expect(f.dev.queues.count == 1 && f.dev.queues[0].ready)
}

@Test func rngFillsOnlyTheWritableBuffersOfAChain() throws {
    var f = try RNGFixture()
    // readable 16 | writable 100 | writable 0 | writable 200, each followed by canary bytes.
    let used = try f.request([(0x20000, 16, false), (0x21000, 100, true), (0x22000, 0, true), (0x23000, 200, true)])
    #expect(used == 300)
    #expect(f.irq.fired == 1)
    #expect(f.intact(0x20000, 0x1000))                           // device-readable: untouched
    #expect(f.intact(0x21000 + 100, 0xF00) && f.intact(0x22000, 0x1000) && f.intact(0x23000 + 200, 0x1000))
    // 100 and 200 random bytes: never all equal to the canary (2^-800 and 2^-1600).
    #expect(!f.intact(0x21000, 100) && !f.intact(0x23000, 200))
    // Two requests do not get the same bytes.
    let first = try f.mem.read(0x23000, count: 200)
    _ = try f.request([(0x23000, 200, true)])
    #expect(try f.mem.read(0x23000, count: 200) != first)
    #expect(f.dev.lastError == nil)
}

@Test func rngRequestsThatAskForNothingAreReturnedEmpty() throws {
    var f = try RNGFixture()
    #expect(try f.request([(0x20000, 64, false)]) == 0)               // read-only only
    #expect(try f.request([(0x20000, 0, true)]) == 0)                 // zero-length
    #expect(try f.request([(0x20000, 0, false), (0x21000, 0, true)]) == 0)
    #expect(f.intact(0x10000, 0xF0000))
    #expect(f.dev.lastError == nil && f.dev.r32(VirtioMMIO.Status) & VirtioMMIO.needsReset == 0)
}

@Test func rngBoundsTheBytesPerRequest() throws {
    var f = try RNGFixture(VirtioRNG(maxBytesPerRequest: 4096))
    // 0x8000 + 0x8000 asked; 4096 given, all into the first buffer.
    #expect(try f.request([(0x20000, 0x8000, true), (0x30000, 0x8000, true)]) == 4096)
    #expect(!f.intact(0x20000 + 4096 - 64, 64) && f.intact(0x20000 + 4096, 0x8000 - 4096) && f.intact(0x30000, 0x8000))
    // The default bound: a chain covering nearly all of RAM gets 64 KiB.
    var g = try RNGFixture()
    #expect(try g.request([(0x10000, 0xF0000, true)]) == UInt32(VirtioRNG.defaultMaxBytesPerRequest))
    #expect(g.intact(0x10000 + 0x10000, 0xE0000))
}

@Test func rngReportsOnlyTheBytesItsSourceFilled() throws {
    // A source that fails (getrandom refused) and one that fills short.
    var none = try RNGFixture(VirtioRNG(source: { _ in -1 }))
    #expect(try none.request([(0x20000, 64, true)]) == 0)
    #expect(none.intact(0x20000, 64))
    var short = try RNGFixture(VirtioRNG(source: { b in
        let n = min(b.count, 10); for i in 0..<n { b[i] = 0 }; return n
    }))
    #expect(try short.request([(0x20000, 64, true), (0x21000, 64, true)]) == 10)
    #expect(try short.mem.read(0x20000, count: 10) == [UInt8](repeating: 0, count: 10) && short.intact(0x2000A, 54) && short.intact(0x21000, 64))
    // A source that claims more than it was given is clamped to the buffer.
    var liar = try RNGFixture(VirtioRNG(source: { b in b.count + 1000 }))
    #expect(try liar.request([(0x20000, 64, true)]) == 64)
    #expect(VirtioRNG.hostRandom(UnsafeMutableRawBufferPointer(start: nil, count: 0)) == 0)
}

@Test func rngChainsOutsideMemoryPutTheDeviceInNeedsReset() throws {
    var f = try RNGFixture()
    try f.drv.setDesc(0, addr: 0xFF000, len: 0x2000, flags: Virtqueue.descWrite)   // runs past the end of RAM
    try f.drv.publish(0)
    f.dev.w32(VirtioMMIO.QueueNotify, 0)
    #expect(f.dev.lastError == .bufferOutOfBounds(index: 0, address: 0xFF000, length: 0x2000))
    #expect(f.dev.r32(VirtioMMIO.Status) & VirtioMMIO.needsReset != 0)
    #expect(try f.drv.usedIdx() == 0 && f.intact(0xC0000, 0x40000))
    // A notification for a queue the device does not have is ignored.
    let g = try RNGFixture()
    g.dev.w32(VirtioMMIO.QueueNotify, 7)
    #expect(g.dev.lastError == nil && g.irq.fired == 0)
    var q = g.drv.deviceQueue
    #expect(try !g.rng.process(queue: 1, &q, memory: g.mem))
}

/// Random descriptors: the device never crashes and never writes outside the writable buffers
/// it was given (a canary region no descriptor points at stays intact), nor more than the bound.
@Test func rngRandomDescriptorsNeverEscapeGuestMemory() throws {
    var rng = SystemRandomNumberGenerator()
    for _ in 0..<150 {
        let filled = Mutex(0)
        var f = try RNGFixture(VirtioRNG(maxBytesPerRequest: 0x6000, source: { b in
            let n = VirtioRNG.hostRandom(b); filled.withLock { $0 += n }; return n
        }))
        try f.drv.randomize(addrs: [0x40000, 0x60000, 0x9FFF0, 0xBFFFF, 0x100000, 0xFFFF_FFFF_FFFF_F000],
                            lens: [0, 1, 15, 16, 0x8000, 0x10000, UInt32.max], safe: 0x40000..<0xC0000, rng: &rng)
        for _ in 0..<Int.random(in: 1...Int(f.drv.size), using: &rng) {   // at most a ring's worth
            try f.drv.publish(UInt16.random(in: 0...(f.drv.size + 1), using: &rng))
            if Bool.random(using: &rng) { try f.mem.store(UInt16.random(in: 0...UInt16.max, using: &rng), at: f.drv.avail + 2) }
            f.dev.notify(0)
        }
        #expect(f.intact(0xC0000, 0x40000))
        // Every used element reports what was filled, each within the bound (exactly, while the
        // used ring has not wrapped: a random avail idx can make the device take more chains).
        let used = Int(try f.drv.usedIdx())
        var reported = 0
        for i in 0..<min(used, Int(f.drv.size)) {
            let len = Int(try f.drv.usedElem(UInt16(i)).len)
            #expect(len <= 0x6000)
            reported += len
        }
        #expect(used > Int(f.drv.size) || reported == filled.withLock { $0 })
    }
}
