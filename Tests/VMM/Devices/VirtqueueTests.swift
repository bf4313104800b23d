import Testing
import BrigGuestMemory
@testable import BrigDevices

/// A real split virtqueue laid out in ordinary guest memory, driven from the driver side.
struct DriverQueue {
    let mem: GuestMemory
    let size: UInt16
    let desc: UInt64, avail: UInt64, used: UInt64
    var availIdx: UInt16 = 0

    /// Rings at `base` (descriptors), `base + 0x1000` (available), `base + 0x2000` (used).
    init(mem: GuestMemory, size: UInt16 = 8, base: UInt64 = 0x1000) {
        self.mem = mem; self.size = size
        desc = base; avail = base + 0x1000; used = base + 0x2000
    }

    var deviceQueue: Virtqueue {
        var q = Virtqueue(maxSize: 256)
        q.size = size; q.descTable = desc; q.availRing = avail; q.usedRing = used; q.ready = true
        return q
    }

    func setDesc(_ i: UInt16, addr: UInt64, len: UInt32, flags: UInt16 = 0, next: UInt16 = 0) throws {
        let d = desc + 16 * UInt64(i)
        try mem.store(addr, at: d); try mem.store(len, at: d + 8)
        try mem.store(flags, at: d + 12); try mem.store(next, at: d + 14)
    }

    mutating func publish(_ head: UInt16) throws {
        try mem.store(head, at: avail + 4 + 2 * UInt64(availIdx % size))
        availIdx &+= 1
        try mem.store(availIdx, at: avail + 2)
    }

    func usedIdx() throws -> UInt16 { try mem.load(at: used + 2) }
    func usedElem(_ i: UInt16) throws -> (id: UInt32, len: UInt32) {
        let e = used + 4 + 8 * UInt64(i % size)
        return (try mem.load(at: e), try mem.load(at: e + 4))
    }
}

func plainMemory() throws -> GuestMemory { try GuestMemory(regions: [GuestRegion(guestBase: 0, size: 0x100000)]) }

@Test func wellFormedChainIsWalkedAndReturned() throws {
    let m = try plainMemory()
    var drv = DriverQueue(mem: m)
    try drv.setDesc(0, addr: 0x10000, len: 16, flags: Virtqueue.descNext, next: 3)
    try drv.setDesc(3, addr: 0x11000, len: 512, flags: Virtqueue.descNext | Virtqueue.descWrite, next: 5)
    try drv.setDesc(5, addr: 0x12000, len: 1, flags: Virtqueue.descWrite)
    try drv.publish(0)
    var q = drv.deviceQueue
    try q.validate(m)
    #expect(try q.pending(m) == 1)
    let c = try #require(try q.pop(m))
    #expect(c.head == 0)
    #expect(c.buffers == [DescriptorBuffer(address: 0x10000, length: 16, writable: false),
                          DescriptorBuffer(address: 0x11000, length: 512, writable: true),
                          DescriptorBuffer(address: 0x12000, length: 1, writable: true)])
    #expect(try q.pop(m) == nil)
    try q.pushUsed(m, head: 0, length: 513)
    #expect(try drv.usedIdx() == 1)
    #expect(try drv.usedElem(0) == (0, 513))
}

@Test func hostileDescriptorsFailSafely() throws {
    let m = try plainMemory()
    let drv = DriverQueue(mem: m)
    let q = drv.deviceQueue
    // Buffer outside guest RAM.
    try drv.setDesc(0, addr: 0x200000, len: 16)
    #expect(throws: VirtqueueError.bufferOutOfBounds(index: 0, address: 0x200000, length: 16)) { try q.walk(m, head: 0) }
    // Buffer whose end wraps past 2^64.
    try drv.setDesc(0, addr: UInt64.max - 3, len: 16)
    #expect(throws: VirtqueueError.bufferOutOfBounds(index: 0, address: UInt64.max - 3, length: 16)) { try q.walk(m, head: 0) }
    // Loop: 1 -> 2 -> 1.
    try drv.setDesc(1, addr: 0x10000, len: 1, flags: Virtqueue.descNext, next: 2)
    try drv.setDesc(2, addr: 0x10000, len: 1, flags: Virtqueue.descNext, next: 1)
    #expect(throws: VirtqueueError.chainTooLong(head: 1, limit: 8)) { try q.walk(m, head: 1) }
    // Next index beyond the table.
    try drv.setDesc(2, addr: 0x10000, len: 1, flags: Virtqueue.descNext, next: 200)
    #expect(throws: VirtqueueError.descriptorIndexOutOfRange(index: 200, size: 8)) { try q.walk(m, head: 1) }
    #expect(throws: VirtqueueError.descriptorIndexOutOfRange(index: 9, size: 8)) { try q.walk(m, head: 9) }
    // Indirect descriptors were never offered.
    try drv.setDesc(4, addr: 0x10000, len: 16, flags: Virtqueue.descIndirect)
    #expect(throws: VirtqueueError.indirectNotNegotiated(index: 4)) { try q.walk(m, head: 4) }
    // Readable after writable.
    try drv.setDesc(6, addr: 0x10000, len: 1, flags: Virtqueue.descWrite | Virtqueue.descNext, next: 7)
    try drv.setDesc(7, addr: 0x10000, len: 1)
    #expect(throws: VirtqueueError.readableAfterWritable(index: 7)) { try q.walk(m, head: 6) }
}

@Test func availIndexRunningAheadAndBadRingsAreRejected() throws {
    let m = try plainMemory()
    let drv = DriverQueue(mem: m)
    try m.store(UInt16(9), at: drv.avail + 2)
    var q = drv.deviceQueue
    #expect(throws: VirtqueueError.availIndexJump(availIdx: 9, lastSeen: 0, size: 8)) { try q.pop(m) }
    q.size = 6
    #expect(throws: VirtqueueError.invalidSize(size: 6, max: 256)) { try q.validate(m) }
    q.size = 8; q.usedRing = 0x3002
    #expect(throws: VirtqueueError.misaligned(ring: "used ring", address: 0x3002)) { try q.validate(m) }
    q.usedRing = 0xFFFF0
    #expect(throws: VirtqueueError.ringOutOfBounds(ring: "used ring", address: 0xFFFF0, length: 70)) { try q.validate(m) }
    q.ready = false
    #expect(throws: VirtqueueError.notReady) { try q.pending(m) }
}

@Test func indicesWrapAround65536() throws {
    let m = try plainMemory()
    var drv = DriverQueue(mem: m, size: 4)
    var q = drv.deviceQueue
    try drv.setDesc(0, addr: 0x10000, len: 4)
    for _ in 0..<70000 {
        try drv.publish(0)
        _ = try #require(try q.pop(m))
        try q.pushUsed(m, head: 0, length: 0)
    }
    #expect(try drv.usedIdx() == UInt16(70000 % 65536))
}

extension DriverQueue {
    /// Every descriptor random: an address from `addrs` or inside `safe`, a length from `lens` or
    /// up to its largest below UInt32.max (clipped so a buffer starting inside `safe` ends there),
    /// random flags and next (fuzzing:
    /// the canary outside `safe` must stay untouched).
    func randomize(addrs: [UInt64], lens: [UInt32], safe: Range<UInt64>, rng: inout some RandomNumberGenerator) throws {
        for i in 0..<size {
            let addr = (addrs + [UInt64.random(in: safe, using: &rng)]).randomElement(using: &rng)!
            let len = (lens + [UInt32.random(in: 0...(lens.filter { $0 < .max }.max() ?? 0), using: &rng)]).randomElement(using: &rng)!
            let safeLen = safe.contains(addr) ? min(UInt64(len), safe.upperBound - addr) : UInt64(len)
            try setDesc(i, addr: addr, len: UInt32(truncatingIfNeeded: safeLen), flags: UInt16.random(in: 0...7, using: &rng),
                        next: UInt16.random(in: 0...(size + 2), using: &rng))
        }
    }
}
