import Testing
import Glibc
import BrigGuestMemory
@testable import BrigDevices

/// A polled guest virtio-net driver on plain memory: rx (queue 0) and tx (queue 1) of 16
/// entries each; the test places descriptors itself.
final class NetDriver {
    let mem: GuestMemory
    let backend: MemoryNetBackend
    let net: VirtioNet
    let dev: VirtioMMIO
    let irq = CountingIRQ()
    let qsize: UInt16 = 16
    var queues: [DriverQueue]
    static let mac: [UInt8] = [0x02, 0x42, 0xAC, 0x11, 0x00, 0x02]

    init(mtu: UInt16 = 1500, vnetHeader: Bool = false,
         features: UInt64 = VirtioNet.featureMAC | VirtioNet.featureMTU | VirtioNet.featureStatus) throws {
        backend = MemoryNetBackend(vnetHeader: vnetHeader)
        mem = try GuestMemory(regions: [GuestRegion(guestBase: 0, size: 0x100000)])
        net = try VirtioNet(mac: Self.mac, mtu: mtu, backend: backend)
        let m = mem
        queues = (0..<2).map { DriverQueue(mem: m, size: 16, base: 0x1000 + UInt64($0) * 0x3000) }
        dev = VirtioMMIO(device: net, memory: mem, irq: irq)
        dev.w32(VirtioMMIO.Status, VirtioMMIO.acknowledge | VirtioMMIO.driver)
        dev.w32(VirtioMMIO.DriverFeaturesSel, 0)
        dev.w32(VirtioMMIO.DriverFeatures, UInt32(truncatingIfNeeded: features))
        dev.w32(VirtioMMIO.DriverFeaturesSel, 1); dev.w32(VirtioMMIO.DriverFeatures, 1)
        dev.w32(VirtioMMIO.Status, VirtioMMIO.acknowledge | VirtioMMIO.driver | VirtioMMIO.featuresOK)
        for q in 0..<2 {
            dev.w32(VirtioMMIO.QueueSel, UInt32(q))
            dev.w32(VirtioMMIO.QueueNum, UInt32(qsize))
            dev.w32(VirtioMMIO.QueueDescLow, UInt32(queues[q].desc)); dev.w32(VirtioMMIO.QueueDriverLow, UInt32(queues[q].avail))
            dev.w32(VirtioMMIO.QueueDeviceLow, UInt32(queues[q].used)); dev.w32(VirtioMMIO.QueueReady, 1)
        }
        dev.w32(VirtioMMIO.Status, VirtioMMIO.acknowledge | VirtioMMIO.driver | VirtioMMIO.featuresOK | VirtioMMIO.driverOK)
    }

    func desc(_ q: Int) -> UInt64 { queues[q].desc }
    func setDesc(_ q: Int, _ i: UInt16, addr: UInt64, len: UInt32, flags: UInt16 = 0, next: UInt16 = 0) throws {
        try queues[q].setDesc(i, addr: addr, len: len, flags: flags, next: next)
    }
    func publish(_ q: Int, _ head: UInt16) throws { try queues[q].publish(head) }
    func usedIdx(_ q: Int) throws -> UInt16 { try queues[q].usedIdx() }
    func usedElem(_ q: Int, _ i: UInt16) throws -> (id: UInt32, len: UInt32) { try queues[q].usedElem(i) }

    /// Sends header + frame as one tx descriptor (or split at `split`).
    func send(_ frame: [UInt8], split: Int? = nil, header: [UInt8] = [UInt8](repeating: 0, count: VirtioNet.headerSize)) throws {
        let bytes = header + frame
        try mem.write(bytes, at: 0x40000)
        if let s = split {
            try setDesc(1, 0, addr: 0x40000, len: UInt32(s), flags: Virtqueue.descNext, next: 1)
            try setDesc(1, 1, addr: 0x40000 + UInt64(s), len: UInt32(bytes.count - s))
        } else {
            try setDesc(1, 0, addr: 0x40000, len: UInt32(bytes.count))
        }
        try publish(1, 0)
        dev.notify(VirtioNet.txQueue)
    }

    /// Offers one writable rx buffer of `len` bytes at descriptor `i` and notifies.
    func offerRx(_ i: UInt16, len: UInt32) throws {
        try setDesc(0, i, addr: 0x60000 + UInt64(i) * 0x2000, len: len, flags: Virtqueue.descWrite)
        try publish(0, i)
        dev.notify(VirtioNet.rxQueue)
    }

    func rxBytes(_ i: UInt16, _ n: Int) throws -> [UInt8] { try mem.read(0x60000 + UInt64(i) * 0x2000, count: n) }
}

func frame(_ n: Int, seed: UInt8 = 1) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ Int(seed)) } }

@Test func netConfigSpaceHasMacStatusAndMTU() throws {
    let d = try NetDriver(mtu: 1400)
    #expect(d.dev.r32(VirtioMMIO.DeviceID) == 1)
    #expect(d.dev.r32(VirtioMMIO.Status) & VirtioMMIO.featuresOK != 0)
    var cfg = [UInt8](repeating: 0xEE, count: 12)
    cfg.withUnsafeMutableBytes { d.dev.read(offset: VirtioMMIO.Config, into: $0) }
    #expect(Array(cfg[0..<6]) == NetDriver.mac)
    #expect(cfg[6] == 1 && cfg[7] == 0)          // VIRTIO_NET_S_LINK_UP
    #expect(cfg[8] == 1 && cfg[9] == 0)          // one queue pair
    #expect(UInt16(cfg[10]) | UInt16(cfg[11]) << 8 == 1400)
    var far = [UInt8](repeating: 0xEE, count: 4)
    far.withUnsafeMutableBytes { d.net.readConfig(offset: UInt64.max - 1, into: $0) }
    #expect(far == [0, 0, 0, 0])
    #expect(throws: VirtioNet.ConfigError.mac(count: 5)) { try VirtioNet(mac: [1, 2, 3, 4, 5], backend: MemoryNetBackend()) }
}

@Test func txStripsTheHeaderAcrossDescriptors() throws {
    let d = try NetDriver()
    let f = frame(60)
    try d.send(f, split: 5)                       // header split over two descriptors
    try d.send(f, split: 12)
    try d.send(f, split: 40)
    #expect(d.backend.sent == [f, f, f])
    #expect(try d.usedIdx(1) == 3)
    #expect(try d.usedElem(1, 0) == (0, 0))
    #expect(d.net.stats == NetStats(txFrames: 3))
    #expect(d.irq.fired >= 3)
}

@Test func txDropsMalformedFrames() throws {
    let d = try NetDriver(mtu: 1500)
    try d.send([])                                // header only: zero-length frame
    try d.send(frame(1500 + 18 + 1))              // over MTU + Ethernet + VLAN
    try d.setDesc(1, 0, addr: 0x40000, len: 8)    // shorter than the header
    try d.publish(1, 0); d.dev.notify(VirtioNet.txQueue)
    try d.setDesc(1, 0, addr: 0x40000, len: 100, flags: Virtqueue.descWrite) // writable on tx
    try d.publish(1, 0); d.dev.notify(VirtioNet.txQueue)
    #expect(d.backend.sent.isEmpty)
    #expect(d.net.stats == NetStats(txDropped: 4))
    #expect(try d.usedIdx(1) == 4)                // every chain still returned
    try d.send(frame(1518))                       // the largest allowed frame goes through
    #expect(d.backend.sent == [frame(1518)])
    #expect(d.dev.r32(VirtioMMIO.Status) & VirtioMMIO.needsReset == 0)
}

@Test func rxWritesHeaderAndFrameAndHoldsFramesWithoutBuffers() throws {
    let d = try NetDriver()
    let f1 = frame(100, seed: 3), f2 = frame(1514, seed: 9)
    d.backend.inject(f1); d.backend.inject(f2)
    d.dev.notify(VirtioNet.rxQueue)               // no buffers: nothing read from the backend
    #expect(d.backend.waiting == 2)
    try d.offerRx(0, len: 2048)
    #expect(try d.usedIdx(0) == 1)
    #expect(try d.usedElem(0, 0) == (0, UInt32(12 + f1.count)))
    let got = try d.rxBytes(0, 12 + f1.count)
    #expect(Array(got[0..<12]) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]) // num_buffers = 1
    #expect(Array(got[12...]) == f1)
    #expect(d.backend.waiting == 1)               // f2 not read until there is room
    // f2 split over a chain of two writable buffers.
    try d.setDesc(0, 1, addr: 0x70000, len: 500, flags: Virtqueue.descWrite | Virtqueue.descNext, next: 2)
    try d.setDesc(0, 2, addr: 0x80000, len: 1100, flags: Virtqueue.descWrite)
    try d.publish(0, 1); d.dev.notify(VirtioNet.rxQueue)
    #expect(try d.usedElem(0, 1) == (1, UInt32(12 + f2.count)))
    let joined = try d.mem.read(0x70000, count: 500) + d.mem.read(0x80000, count: 12 + f2.count - 500)
    #expect(Array(joined[12...]) == f2)
    #expect(d.net.stats == NetStats(rxFrames: 2))
}

@Test func rxDropsFramesThatDoNotFitOrReadableBuffers() throws {
    let d = try NetDriver()
    d.backend.inject(frame(1000))
    try d.offerRx(0, len: 12 + 999)               // one byte short: dropped, never truncated
    #expect(try d.usedElem(0, 0) == (0, 0))
    d.backend.inject(frame(10))
    try d.setDesc(0, 1, addr: 0x70000, len: 2048) // device-readable buffer on rx
    try d.publish(0, 1); d.dev.notify(VirtioNet.rxQueue)
    #expect(try d.usedElem(0, 1) == (1, 0))
    #expect(d.net.stats == NetStats(rxDropped: 2))
    #expect(d.dev.r32(VirtioMMIO.Status) & VirtioMMIO.needsReset == 0)
}

@Test func chainOutsideGuestMemoryResetsTheDeviceWithoutTouchingIt() throws {
    let d = try NetDriver()
    try d.setDesc(1, 0, addr: 0xFFFF0, len: 0x100)  // runs past the end of RAM
    try d.publish(1, 0); d.dev.notify(VirtioNet.txQueue)
    #expect(d.dev.r32(VirtioMMIO.Status) & VirtioMMIO.needsReset != 0)
    #expect(d.backend.sent.isEmpty)
}

/// A stalled rx (no guest buffers) stops the event loop from watching the backend; a guest
/// notify resumes it.
@Test func eventLoopWaitsForGuestBuffers() throws {
    var p: [Int32] = [0, 0]
    #expect(socketpair(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0, &p) == 0)
    defer { close(p[1]) }
    let tap = TapBackend(fd: p[0])
    let mem = try GuestMemory(regions: [GuestRegion(guestBase: 0, size: 0x100000)])
    let net = try VirtioNet(mac: NetDriver.mac, backend: tap)
    var delivered = 0
    let f = frame(64)
    #expect(write(p[1], f, f.count) == f.count)
    #expect(net.pollBackend(timeoutMs: 50) { delivered += 1 })
    #expect(delivered == 0)                       // stalled from the start: the driver has no buffers
    var q = Virtqueue(maxSize: 16)
    q.size = 16; q.descTable = 0x1000; q.availRing = 0x2000; q.usedRing = 0x3000; q.ready = true
    try mem.store(UInt64(0x10000), at: 0x1000); try mem.store(UInt32(2048), at: 0x1008); try mem.store(Virtqueue.descWrite, at: 0x100C)
    try mem.store(UInt16(0), at: 0x2004); try mem.store(UInt16(1), at: 0x2002)
    #expect(try net.process(queue: VirtioNet.rxQueue, &q, memory: mem))
    #expect(try mem.read(0x10000 + 12, count: 64) == f)
    #expect(net.stats.rxFrames == 1)
    #expect(write(p[1], f, f.count) == f.count)
    #expect(net.pollBackend(timeoutMs: 50) { delivered += 1 })
    #expect(delivered == 0)                       // ring exhausted again: not watched
    net.stop()
    #expect(!net.pollBackend(timeoutMs: 50) { delivered += 1 })
}

/// Random descriptors on both queues: the device never crashes, never writes outside the
/// buffers it was given, and every frame it forwards is within the limits.
@Test func randomDescriptorsNeverEscapeGuestMemory() throws {
    var rng = SystemRandomNumberGenerator()
    for round in 0..<100 {
        let d = try NetDriver()
        // Canary region the device must never write: 0xC0000..<0x100000 (no descriptor points there on purpose).
        try d.mem.write([UInt8](repeating: 0xA5, count: 0x40000), at: 0xC0000)
        for _ in 0..<Int.random(in: 1...6, using: &rng) { d.backend.inject(frame(Int.random(in: 0...3000, using: &rng), seed: UInt8(round & 0xFF))) }
        for i in 0..<d.qsize {
            for q in 0..<2 {
                let addr: UInt64 = [0x40000, 0x60000, 0x9FFF0, 0x100000, 0xFFFF_FFFF_FFFF_F000, UInt64.random(in: 0x40000..<0xB0000, using: &rng)].randomElement(using: &rng)!
                let len = [0, 1, 11, 12, 13, 1526, 0x10000, UInt32.max, UInt32.random(in: 0...0x8000, using: &rng)].randomElement(using: &rng)!
                let safeLen = addr >= 0x40000 && addr < 0xC0000 ? min(UInt64(len), 0xC0000 - addr) : UInt64(len)
                let flags = UInt16.random(in: 0...7, using: &rng)
                try d.setDesc(q, i, addr: addr, len: UInt32(truncatingIfNeeded: safeLen), flags: flags, next: UInt16.random(in: 0...(d.qsize + 2), using: &rng))
            }
        }
        for _ in 0..<Int.random(in: 1...20, using: &rng) {
            let q = Int.random(in: 0...1, using: &rng)
            try d.publish(q, UInt16.random(in: 0...(d.qsize + 1), using: &rng))
            if Bool.random(using: &rng) { try d.mem.store(UInt16.random(in: 0...UInt16.max, using: &rng), at: d.queues[q].avail + 2) }
            d.dev.notify(q)
        }
        #expect(try d.mem.read(0xC0000, count: 0x40000).allSatisfy { $0 == 0xA5 })
        #expect(d.backend.sent.allSatisfy { !$0.isEmpty && $0.count <= d.net.maxTxFrame })
    }
}

/// A backend that hangs up is not polled again (no busy loop on a readable-forever fd).
@Test func aBackendThatHangsUpIsNotPolledAgain() throws {
    var p: [Int32] = [0, 0]
    #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &p) == 0)
    let net = try VirtioNet(mac: NetDriver.mac, backend: TapBackend(fd: p[0]))
    let mem = try GuestMemory(regions: [GuestRegion(guestBase: 0, size: 0x100000)])
    var q = Virtqueue(maxSize: 16)
    q.size = 16; q.descTable = 0x1000; q.availRing = 0x2000; q.usedRing = 0x3000; q.ready = true
    try mem.store(UInt64(0x10000), at: 0x1000); try mem.store(UInt32(2048), at: 0x1008); try mem.store(Virtqueue.descWrite, at: 0x100C)
    try mem.store(UInt16(0), at: 0x2004); try mem.store(UInt16(1), at: 0x2002)
    #expect(try !net.process(queue: VirtioNet.rxQueue, &q, memory: mem)) // a buffer waits; nothing to read
    close(p[1])
    var delivered = 0
    #expect(net.pollBackend(timeoutMs: 50) { delivered += 1 })
    #expect(net.pollBackend(timeoutMs: 50) { delivered += 1 })
    #expect(delivered == 0)
}
