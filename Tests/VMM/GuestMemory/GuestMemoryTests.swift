import Testing
@testable import BrigGuestMemory

@Test func readWriteRoundTripLittleEndian() throws {
    let m = try GuestMemory(regions: [GuestRegion(guestBase: 0, size: 0x10000)])
    try m.store(UInt32(0x1122_3344), at: 0x101)
    #expect(try m.read(0x101, count: 4) == [0x44, 0x33, 0x22, 0x11])
    #expect(try m.load(UInt32.self, at: 0x101) == 0x1122_3344)
    try m.write([1, 2, 3], at: 0xFFFD)
    #expect(try m.read(0xFFFD, count: 3) == [1, 2, 3])
}

@Test func accessesOutsideRAMAreRejected() throws {
    let m = try GuestMemory(regions: [GuestRegion(guestBase: 0x1000, size: 0x2000)])
    #expect(throws: GuestMemoryError.outOfBounds(address: 0, length: 1)) { try m.read(0, count: 1) }
    #expect(throws: GuestMemoryError.outOfBounds(address: 0x2FFF, length: 2)) { try m.read(0x2FFF, count: 2) }
    #expect(m.isValid(0x1000, length: 0x2000))
    #expect(!m.isValid(0x1000, length: 0x2001))
}

@Test func wrappingAddressesAreRejectedNotWrapped() throws {
    let m = try GuestMemory(regions: [GuestRegion(guestBase: 0, size: 0x1000)])
    #expect(throws: GuestMemoryError.addressOverflow(address: UInt64.max - 1, length: 4)) {
        _ = try m.load(UInt32.self, at: UInt64.max - 1)
    }
    #expect(!m.isValid(UInt64.max, length: UInt64.max))
    #expect(!m.isValid(0x800, length: UInt64.max - 0x7FF))
}

@Test func regionsSplitAroundTheMMIOHole() throws {
    let small = try GuestMemory.withHole(size: 0x100000, mmioHoleStart: 0x80000)
    #expect(small.regions.map(\.guestBase) == [0, 0x1_0000_0000])
    #expect(small.totalSize == 0x100000)
    #expect(small.lowMemoryEnd == 0x80000)
    // An access spanning two regions is refused even though both ends are RAM.
    #expect(small.isValid(0x7FFFF, length: 1))
    #expect(!small.isValid(0x7FFF0, length: 0x20))
    #expect(small.isValid(0x1_0000_0000, length: 0x80000))
}

@Test func invalidLayoutsAreTyped() throws {
    #expect(throws: GuestMemoryError.self) { try GuestRegion(guestBase: 0, size: 100) }
    #expect(throws: GuestMemoryError.self) { try GuestRegion(guestBase: 0x10, size: 0x1000) }
    #expect(throws: GuestMemoryError.self) { try GuestRegion(guestBase: UInt64.max - 0xFFF, size: 0x2000) }
    let a = try GuestRegion(guestBase: 0, size: 0x2000), b = try GuestRegion(guestBase: 0x1000, size: 0x1000)
    #expect(throws: GuestMemoryError.self) { try GuestMemory(regions: [a, b]) }
}

@Test func guestRAMSitsOnAHugePageBoundary() throws {
    // So that the host's THP policy can back it with 2 MiB pages KVM maps whole.
    for size: UInt64 in [4096, 3 << 20, 64 << 20] {
        let r = try GuestRegion(guestBase: 0, size: size)
        #expect(UInt(bitPattern: r.host) % UInt(GuestRegion.hugePage) == 0)
        r.host.storeBytes(of: 0xAB, toByteOffset: Int(size) - 1, as: UInt8.self)
        #expect(r.host.load(fromByteOffset: Int(size) - 1, as: UInt8.self) == 0xAB)
    }
}
