import Testing
import Glibc
import BrigGuestMemory
@testable import BrigDevices

func tempDisk(sectors: Int, fill: UInt8 = 0) throws -> String {
    var template = Array("/tmp/brig-blk-XXXXXX".utf8CString)
    let fd = mkstemp(&template)
    #expect(fd >= 0)
    let bytes = [UInt8](repeating: fill, count: sectors * 512)
    #expect(write(fd, bytes, bytes.count) == bytes.count)
    close(fd)
    return template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
}

extension VirtioMMIO {
    func w32(_ off: UInt64, _ v: UInt32) { _ = withUnsafeBytes(of: v.littleEndian) { write(offset: off, data: $0) } }
    func r32(_ off: UInt64) -> UInt32 {
        var v: UInt32 = 0
        withUnsafeMutableBytes(of: &v) { read(offset: off, into: $0) }
        return UInt32(littleEndian: v)
    }
}

/// Runs the virtio 1.x driver handshake and sets up queue 0 at the DriverQueue's rings.
func bringUp(_ dev: VirtioMMIO, _ drv: DriverQueue) {
    dev.w32(VirtioMMIO.Status, 0)
    dev.w32(VirtioMMIO.Status, VirtioMMIO.acknowledge | VirtioMMIO.driver)
    dev.w32(VirtioMMIO.DriverFeaturesSel, 1); dev.w32(VirtioMMIO.DriverFeatures, 1)
    dev.w32(VirtioMMIO.Status, VirtioMMIO.acknowledge | VirtioMMIO.driver | VirtioMMIO.featuresOK)
    dev.w32(VirtioMMIO.QueueSel, 0)
    dev.w32(VirtioMMIO.QueueNum, UInt32(drv.size))
    dev.w32(VirtioMMIO.QueueDescLow, UInt32(drv.desc)); dev.w32(VirtioMMIO.QueueDescHigh, 0)
    dev.w32(VirtioMMIO.QueueDriverLow, UInt32(drv.avail)); dev.w32(VirtioMMIO.QueueDeviceLow, UInt32(drv.used))
    dev.w32(VirtioMMIO.QueueReady, 1)
    dev.w32(VirtioMMIO.Status, VirtioMMIO.acknowledge | VirtioMMIO.driver | VirtioMMIO.featuresOK | VirtioMMIO.driverOK)
}

/// Builds header/data/status descriptors 0,1,2 and publishes them.
func submit(_ drv: inout DriverQueue, type: UInt32, sector: UInt64, dataLen: UInt32, deviceWrites: Bool) throws {
    try drv.mem.store(type, at: 0x10000); try drv.mem.store(UInt32(0), at: 0x10004); try drv.mem.store(sector, at: 0x10008)
    try drv.mem.store(UInt8(0xFF), at: 0x12000)
    try drv.setDesc(0, addr: 0x10000, len: 16, flags: Virtqueue.descNext, next: 1)
    try drv.setDesc(1, addr: 0x11000, len: dataLen, flags: Virtqueue.descNext | (deviceWrites ? Virtqueue.descWrite : 0), next: 2)
    try drv.setDesc(2, addr: 0x12000, len: 1, flags: Virtqueue.descWrite)
    try drv.publish(0)
}

/// A virtio-blk device on a fresh temp disk, brought up with queue 0 at a DriverQueue.
struct BlkFixture {
    let mem: GuestMemory, path: String, irq = CountingIRQ(), dev: VirtioMMIO
    var drv: DriverQueue
    init(sectors: Int, fill: UInt8 = 0, readOnly: Bool = false) throws {
        mem = try plainMemory()
        path = try tempDisk(sectors: sectors, fill: fill)
        dev = VirtioMMIO(device: try VirtioBlk(path: path, readOnly: readOnly), memory: mem, irq: irq)
        drv = DriverQueue(mem: mem)
        bringUp(dev, drv)
    }
}

@Test func transportIdentifiesAndNegotiates() throws {
    let m = try plainMemory()
    let dev = VirtioMMIO(device: try VirtioBlk(path: try tempDisk(sectors: 8), readOnly: true), memory: m, irq: nil)
    #expect(dev.r32(VirtioMMIO.MagicValue) == 0x7472_6976 && dev.r32(VirtioMMIO.Version) == 2 && dev.r32(VirtioMMIO.DeviceID) == 2)
    dev.w32(VirtioMMIO.DeviceFeaturesSel, 0)
    #expect(dev.r32(VirtioMMIO.DeviceFeatures) == (1 << 9 | 1 << 5))
    dev.w32(VirtioMMIO.DeviceFeaturesSel, 1)
    #expect(dev.r32(VirtioMMIO.DeviceFeatures) == 1)
    #expect(dev.r32(VirtioMMIO.Config) == 8)                        // capacity in sectors
    // A legacy driver (no VERSION_1) does not get FEATURES_OK.
    dev.w32(VirtioMMIO.Status, 3)
    dev.w32(VirtioMMIO.Status, 3 | VirtioMMIO.featuresOK)
    #expect(dev.r32(VirtioMMIO.Status) & VirtioMMIO.featuresOK == 0)
    // Features that were never offered are refused too.
    dev.w32(VirtioMMIO.DriverFeaturesSel, 0); dev.w32(VirtioMMIO.DriverFeatures, 1 << 28)
    dev.w32(VirtioMMIO.DriverFeaturesSel, 1); dev.w32(VirtioMMIO.DriverFeatures, 1)
    dev.w32(VirtioMMIO.Status, 3 | VirtioMMIO.featuresOK)
    #expect(dev.r32(VirtioMMIO.Status) & VirtioMMIO.featuresOK == 0)
    dev.w32(VirtioMMIO.Status, 0)
    #expect(dev.r32(VirtioMMIO.Status) == 0)
}

@Test func blkWritesThenReadsBackThroughTheQueue() throws {
    var f = try BlkFixture(sectors: 16)
    defer { unlink(f.path) }
    let (m, path, irq, dev) = (f.mem, f.path, f.irq, f.dev)
    #expect(dev.queues[0].ready)
    let pattern = (0..<1024).map { UInt8(truncatingIfNeeded: $0 * 7) }
    try m.write(pattern, at: 0x11000)
    try submit(&f.drv, type: VirtioBlk.typeOut, sector: 3, dataLen: 1024, deviceWrites: false)
    dev.w32(VirtioMMIO.QueueNotify, 0)
    #expect(try m.load(UInt8.self, at: 0x12000) == VirtioBlk.statusOK)
    #expect(try f.drv.usedElem(0) == (0, 1))
    #expect(irq.fired == 1 && dev.r32(VirtioMMIO.InterruptStatus) == 1)
    dev.w32(VirtioMMIO.InterruptACK, 1)
    #expect(dev.r32(VirtioMMIO.InterruptStatus) == 0)

    try m.zero(0x11000, length: 1024)
    try submit(&f.drv, type: VirtioBlk.typeIn, sector: 3, dataLen: 1024, deviceWrites: true)
    dev.w32(VirtioMMIO.QueueNotify, 0)
    #expect(try m.load(UInt8.self, at: 0x12000) == VirtioBlk.statusOK)
    #expect(try m.read(0x11000, count: 1024) == pattern)
    #expect(try f.drv.usedElem(1) == (0, 1025))

    // On the host file, too.
    let fd = open(path, O_RDONLY); defer { close(fd) }
    var host = [UInt8](repeating: 0, count: 1024)
    #expect(pread(fd, &host, 1024, 3 * 512) == 1024 && host == pattern)

    // Past the end of the disk: IOERR, nothing read.
    try submit(&f.drv, type: VirtioBlk.typeIn, sector: 15, dataLen: 1024, deviceWrites: true)
    dev.w32(VirtioMMIO.QueueNotify, 0)
    #expect(try m.load(UInt8.self, at: 0x12000) == VirtioBlk.statusIOErr)
    // Sector number whose byte offset overflows.
    try submit(&f.drv, type: VirtioBlk.typeIn, sector: UInt64.max / 256, dataLen: 512, deviceWrites: true)
    dev.w32(VirtioMMIO.QueueNotify, 0)
    #expect(try m.load(UInt8.self, at: 0x12000) == VirtioBlk.statusIOErr)
    // Flush and GET_ID.
    try submit(&f.drv, type: VirtioBlk.typeFlush, sector: 0, dataLen: 0, deviceWrites: false)
    dev.w32(VirtioMMIO.QueueNotify, 0)
    #expect(try m.load(UInt8.self, at: 0x12000) == VirtioBlk.statusOK)
    try submit(&f.drv, type: VirtioBlk.typeGetID, sector: 0, dataLen: 20, deviceWrites: true)
    dev.w32(VirtioMMIO.QueueNotify, 0)
    #expect(try m.load(UInt8.self, at: 0x12000) == VirtioBlk.statusOK)
    #expect(try m.read(0x11000, count: 9) == Array(String(path.split(separator: "/").last!).utf8.prefix(9)))
    try submit(&f.drv, type: 99, sector: 0, dataLen: 0, deviceWrites: false)
    dev.w32(VirtioMMIO.QueueNotify, 0)
    #expect(try m.load(UInt8.self, at: 0x12000) == VirtioBlk.statusUnsupported)
}

@Test func readOnlyDiskRefusesWrites() throws {
    var f = try BlkFixture(sectors: 4, fill: 0x5A, readOnly: true)
    defer { unlink(f.path) }
    let (m, path, dev) = (f.mem, f.path, f.dev)
    try m.write([UInt8](repeating: 1, count: 512), at: 0x11000)
    try submit(&f.drv, type: VirtioBlk.typeOut, sector: 0, dataLen: 512, deviceWrites: false)
    dev.w32(VirtioMMIO.QueueNotify, 0)
    #expect(try m.load(UInt8.self, at: 0x12000) == VirtioBlk.statusIOErr)
    let fd = open(path, O_RDONLY); defer { close(fd) }
    var b: UInt8 = 0
    #expect(pread(fd, &b, 1, 0) == 1 && b == 0x5A)
}

@Test func hostileQueueSetsNeedsResetInsteadOfTouchingMemory() throws {
    var f = try BlkFixture(sectors: 4)
    defer { unlink(f.path) }
    let (m, dev) = (f.mem, f.dev)
    try f.drv.setDesc(0, addr: 0x10000, len: 16, flags: Virtqueue.descNext, next: 0)   // self-loop
    try f.drv.publish(0)
    dev.w32(VirtioMMIO.QueueNotify, 0)
    #expect(dev.lastError == .chainTooLong(head: 0, limit: 8))
    #expect(dev.r32(VirtioMMIO.Status) & VirtioMMIO.needsReset != 0)
    #expect(dev.r32(VirtioMMIO.InterruptStatus) & VirtioMMIO.intConfigChange != 0)
    #expect(try f.drv.usedIdx() == 0)
    // Rings outside RAM are refused at QueueReady.
    dev.w32(VirtioMMIO.Status, 0)
    dev.w32(VirtioMMIO.QueueSel, 0); dev.w32(VirtioMMIO.QueueNum, 8)
    dev.w32(VirtioMMIO.QueueDescLow, 0xFFFF_F000); dev.w32(VirtioMMIO.QueueReady, 1)
    #expect(dev.r32(VirtioMMIO.QueueReady) == 0)
    #expect(dev.lastError == .ringOutOfBounds(ring: "descriptor table", address: 0xFFFF_F000, length: 128))
}
