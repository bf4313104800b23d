import Testing
import Glibc
import Synchronization
@testable import BrigDevices

final class CountingIRQ: InterruptLine {
    let count = Mutex(0)
    func trigger() { count.withLock { $0 += 1 } }
    var fired: Int { count.withLock { $0 } }
}

@Test func serialTransmitsToItsFileDescriptor() throws {
    var fds: [Int32] = [0, 0]
    #expect(pipe(&fds) == 0)
    defer { close(fds[0]); close(fds[1]) }
    let s = Serial16550(outFD: fds[1], record: true)
    for b in Array("ok\n".utf8) { s.writeRegister(Serial16550.DATA, b) }
    var buf = [UInt8](repeating: 0, count: 3)
    #expect(read(fds[0], &buf, 3) == 3)
    #expect(buf == Array("ok\n".utf8))
    #expect(s.transmitted == buf)
}

@Test func serialDLABSwitchesDataAndIERToTheDivisor() {
    let s = Serial16550(outFD: -1, record: true)
    s.writeRegister(Serial16550.LCR, 0x83)
    s.writeRegister(Serial16550.DATA, 0x01)
    s.writeRegister(Serial16550.IER, 0x02)
    #expect(s.divisor == 0x0201)
    #expect(s.readRegister(Serial16550.DATA) == 0x01 && s.readRegister(Serial16550.IER) == 0x02)
    #expect(s.transmitted.isEmpty && s.ier == 0)
    s.writeRegister(Serial16550.LCR, 0x03)
    #expect(s.readRegister(Serial16550.LCR) == 0x03)
    s.writeRegister(Serial16550.DATA, 0x41)
    #expect(s.transmitted == [0x41])
}

@Test func serialLineStatusAndInterruptIdentification() {
    let irq = CountingIRQ()
    let s = Serial16550(outFD: -1, irq: irq)
    #expect(s.readRegister(Serial16550.LSR) == 0x60)              // THRE | TEMT, no data
    #expect(s.readRegister(Serial16550.IIR) & 0x0F == 0x01)       // no interrupt pending
    s.writeRegister(Serial16550.IER, Serial16550.ierTHRE)        // enabling THRE interrupts fires at once
    #expect(irq.fired == 1)
    #expect(s.readRegister(Serial16550.IIR) & 0x0F == 0x02)
    #expect(s.readRegister(Serial16550.IIR) & 0x0F == 0x01)       // reading IIR cleared THRE
    s.writeRegister(Serial16550.IER, Serial16550.ierTHRE | Serial16550.ierRDA)
    s.enqueueInput([0x61])
    #expect(s.readRegister(Serial16550.LSR) & 0x01 == 0x01)
    #expect(s.readRegister(Serial16550.IIR) & 0x0F == 0x04)       // RDA outranks THRE
    #expect(s.readRegister(Serial16550.DATA) == 0x61)
    #expect(s.readRegister(Serial16550.LSR) & 0x01 == 0)
    s.writeRegister(Serial16550.SCR, 0x5A)
    #expect(s.readRegister(Serial16550.SCR) == 0x5A)
    s.writeRegister(Serial16550.LSR, 0)                           // read-only: ignored
    #expect(s.readRegister(Serial16550.LSR) == 0x60)
}

@Test func serialLoopbackEchoesAndMirrorsModemLines() {
    let s = Serial16550(outFD: -1, record: true)
    #expect(s.readRegister(Serial16550.MSR) == 0xB0)
    s.writeRegister(Serial16550.MCR, 0x1F)                        // LOOP | OUT2 | OUT1 | RTS | DTR
    #expect(s.readRegister(Serial16550.MSR) == 0xF0)
    s.writeRegister(Serial16550.MCR, 0x1A)                        // Linux's loopback probe
    #expect(s.readRegister(Serial16550.MSR) & 0xF0 == 0x90)
    s.writeRegister(Serial16550.DATA, 0x33)
    #expect(s.transmitted.isEmpty)
    #expect(s.readRegister(Serial16550.DATA) == 0x33)
}

@Test func busRoutesByRangeRejectsOverlapAndFloatsUnclaimed() throws {
    let bus = Bus()
    let s = Serial16550(outFD: -1, record: true)
    try bus.insert(s, base: 0x3F8, size: 8)
    #expect(throws: BusError.overlap(base: 0x3FF, size: 2, existingBase: 0x3F8)) { try bus.insert(ExitPort(), base: 0x3FF, size: 2) }
    #expect(throws: BusError.emptyRange(base: 0x10)) { try bus.insert(ExitPort(), base: 0x10, size: 0) }
    try bus.insert(ExitPort(), base: ExitPort.port, size: 4)
    try bus.insert(I8042(), base: I8042.base, size: I8042.size)
    #expect(bus.resolve(0x3FD)?.offset == 5)
    var v: [UInt8] = [0]
    v.withUnsafeMutableBytes { bus.read(0x3FD, into: $0) }
    #expect(v == [0x60])
    v.withUnsafeMutableBytes { bus.read(0x80, into: $0) }
    #expect(v == [0xFF])
    #expect([UInt8(0x42)].withUnsafeBytes { bus.write(0x3F8, data: $0) } == DeviceEffect.none)
    #expect(s.transmitted == [0x42])
    #expect([UInt8(7)].withUnsafeBytes { bus.write(0xF4, data: $0) } == .powerOff(status: 7))
    // i8042: no controller for Linux to probe (output buffer never empties), reset at once
    // (input buffer empty).
    v.withUnsafeMutableBytes { bus.read(0x64, into: $0) }
    #expect(v[0] & 1 == 1 && v[0] & 2 == 0)
    #expect([UInt8(0xFE)].withUnsafeBytes { bus.write(0x64, data: $0) } == .reset)
    #expect([UInt8(0xFE)].withUnsafeBytes { bus.write(0x60, data: $0) } == DeviceEffect.none)
    #expect([UInt8(0xAA)].withUnsafeBytes { bus.write(0x1234, data: $0) } == DeviceEffect.none)
}

@Test func virtioCmdlineEntryFormat() {
    #expect(virtioMMIOCmdlineEntry(base: 0xD000_0000, irq: 5) == "virtio_mmio.device=4K@0xd0000000:5")
    #expect(virtioMMIOCmdlineEntry(base: 0x1000, size: 100, irq: 12) == "virtio_mmio.device=100@0x1000:12")
}
