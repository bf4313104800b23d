import Testing
import BrigGuestMemory
@testable import BrigBoot

func u32(_ b: [UInt8], _ o: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(b[o + $1]) << (8 * $1) } }
func u64(_ b: [UInt8], _ o: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(b[o + $1]) << (8 * $1) } }

@Test func zeroPageFieldsSitAtBootProtocolOffsets() throws {
    let e820 = [E820Entry(address: 0, size: 0x9FC00, kind: .ram), E820Entry(address: 0x100000, size: 0x300000, kind: .ram)]
    let z = try ZeroPage.build(e820: e820, cmdlineAddress: 0x20000, cmdlineLength: 11,
                               initrd: (0x3FF0000, 0x1234), header: nil)
    #expect(z.count == 4096)
    #expect(z[0x1FE] == 0x55 && z[0x1FF] == 0xAA)
    #expect(Array(z[0x202..<0x206]) == Array("HdrS".utf8))
    #expect(z[0x210] == 0xFF)                    // type_of_loader
    #expect(z[0x211] & 0x81 == 0x81)             // LOADED_HIGH | CAN_USE_HEAP
    #expect(u32(z, 0x228) == 0x20000)            // cmd_line_ptr
    #expect(u32(z, 0x238) == 11)                 // cmdline_size
    #expect(u32(z, 0x218) == 0x3FF0000)          // ramdisk_image
    #expect(u32(z, 0x21C) == 0x1234)             // ramdisk_size
    #expect(z[0x1E8] == 2)                       // e820_entries
    #expect(u64(z, 0x2D0) == 0 && u64(z, 0x2D8) == 0x9FC00 && u32(z, 0x2E0) == 1)
    #expect(u64(z, 0x2E4) == 0x100000 && u64(z, 0x2EC) == 0x300000 && u32(z, 0x2F4) == 1)
}

@Test func bzImageSetupHeaderIsCopiedIntoTheZeroPage() throws {
    let header: [UInt8] = [7] + [UInt8](repeating: 0xEE, count: 16)
    let z = try ZeroPage.build(e820: [], cmdlineAddress: 0x20000, cmdlineLength: 0, initrd: nil, header: header)
    #expect(z[0x1F1] == 7 && z[0x1F2] == 0xEE && z[0x201] == 0xEE)
    #expect(throws: BootError.tooManyE820Entries(129)) {
        try ZeroPage.build(e820: .init(repeating: E820Entry(address: 0, size: 1, kind: .ram), count: 129),
                           cmdlineAddress: 0, cmdlineLength: 0, initrd: nil, header: nil)
    }
}

@Test func e820ReservesTheBIOSHoleAndListsEachRegion() throws {
    let m = try GuestMemory.withHole(size: 0x200000, mmioHoleStart: 0x180000)
    #expect(E820Entry.map(for: m) == [
        E820Entry(address: 0, size: 0x9FC00, kind: .ram),
        E820Entry(address: 0x9FC00, size: 0x60400, kind: .reserved),
        E820Entry(address: 0x100000, size: 0x80000, kind: .ram),
        E820Entry(address: 0x1_0000_0000, size: 0x80000, kind: .ram),
    ])
}

@Test func cmdlineIsNULTerminatedAndBounded() throws {
    var c = KernelCmdline("console=ttyS0")
    c.append("virtio_mmio.device=4K@0xd0000000:5")
    c.append("")
    #expect(c.text == "console=ttyS0 virtio_mmio.device=4K@0xd0000000:5")
    #expect(try c.bytes().last == 0)
    #expect(throws: BootError.cmdlineTooLong(length: 10, max: 4)) { try KernelCmdline("0123456789").bytes(max: 4) }
    #expect(throws: BootError.cmdlineContainsNUL) { try KernelCmdline("a\0b").bytes() }
}

@Test func pageTablesIdentityMapFourGiBWith2MiBPages() throws {
    let e = PageTables.entries()
    let map = Dictionary(uniqueKeysWithValues: e.map { ($0.address, $0.value) })
    #expect(map[0x9000] == 0xA003)
    #expect(map[0xA000] == 0xB003 && map[0xA018] == 0xE003)
    #expect(map[0xB000] == 0x83)
    #expect(map[0xB008] == 0x200083)
    #expect(map[0xEFF8] == 0xFFE0_0083)           // last 2 MiB page below 4 GiB
    #expect(e.count == 1 + 4 + 4 * 512)
}

@Test func gdtEntriesMatchTheClassicFlatEncodings() {
    let s = BootCPUState.linux64(entry: 0x100000)
    #expect(s.gdt[1] == 0x00AF_9B00_0000_FFFF)     // 64-bit code
    #expect(s.gdt[2] == 0x00CF_9300_0000_FFFF)     // data
    #expect(s.rsi == 0x7000 && s.cr3 == 0x9000 && s.efer == 0x500 && s.cr0 & 0x8000_0001 == 0x8000_0001)
    let p = BootCPUState.pvh(entry: 0x1000000)
    #expect(p.gdt[1] == 0x00CF_9B00_0000_FFFF)     // 32-bit code
    #expect(p.rbx == 0x6000 && p.cr0 & 0x8000_0000 == 0 && p.efer == 0)
}

@Test func bootLoaderWritesPVHStartInfoWithMemmapAndInitrd() throws {
    let m = try GuestMemory.withHole(size: 64 << 20)
    let r = try BootLoader(kernel: makeELF(pvh: 0x100000), initrd: [1, 2, 3], cmdline: KernelCmdline("hi")).load(into: m)
    #expect(r.cpu.rip == 0x100000 && r.cpu.rbx == 0x6000)
    let si = try m.read(0x6000, count: 56)
    #expect(u32(si, 0) == 0x336EC578 && u32(si, 4) == 1 && u32(si, 12) == 1)
    #expect(u64(si, 24) == 0x20000 && u64(si, 40) == 0x6040 && u32(si, 48) == 3)
    #expect(try m.read(0x20000, count: 3) == Array("hi\0".utf8))
    let rd = try #require(r.initrdAddress)
    #expect(try m.read(rd, count: 3) == [1, 2, 3])
    #expect(try m.load(UInt64.self, at: 0x6E00) == rd)
}

@Test func bootLoaderWritesZeroPageAndTablesForLinux64() throws {
    let m = try GuestMemory.withHole(size: 64 << 20)
    let r = try BootLoader(kernel: makeELF(), cmdline: KernelCmdline("console=ttyS0")).load(into: m)
    #expect(r.cpu == .linux64(entry: 0x100000))
    let z = try m.read(0x7000, count: 4096)
    #expect(u32(z, 0x228) == 0x20000 && u32(z, 0x238) == 13 && z[0x1E8] == 3)
    #expect(try m.load(UInt64.self, at: 0x9000) == 0xA003)
    #expect(try m.load(UInt64.self, at: 0x508) == 0x00AF_9B00_0000_FFFF)
}

@Test func mpTableDescribesEveryCPUAndTheIOAPICWithValidChecksums() throws {
    let t = MPTable.build(cpus: 2)
    #expect(Array(t[0..<4]) == Array("_MP_".utf8))
    #expect(u32(t, 4) == 0x9FC10)                        // config table right after the pointer
    #expect(t[0..<16].reduce(0, &+) == 0)                 // floating pointer checksum
    let table = Array(t[16...])
    #expect(Array(table[0..<4]) == Array("PCMP".utf8))
    let length = Int(table[4]) | Int(table[5]) << 8
    #expect(length == table.count)
    #expect(table.reduce(0, &+) == 0)                     // config table checksum
    #expect(Int(table[34]) | Int(table[35]) << 8 == 2 + 1 + 1 + 15 + 2)  // entry count
    #expect(u32(table, 36) == 0xFEE0_0000)
    // Processor entries: APIC ids 0 and 1, the first is the BSP.
    #expect(table[44] == 0 && table[45] == 0 && table[47] == 3)
    #expect(table[64] == 0 && table[65] == 1 && table[67] == 1)
    // IOAPIC entry after the bus entry: id = cpus, at 0xFEC00000.
    #expect(table[92] == 2 && table[93] == 2 && u32(table, 96) == 0xFEC0_0000)
    // Interrupt entries: IRQ 0 (the PIT) on pin 2 as KVM routes GSI 0, no IRQ 2, IRQ 1 on pin 1.
    struct IRQEntry: Equatable { let type: UInt8, irq: UInt8, pin: UInt8 }
    let irqs: [IRQEntry] = stride(from: 100, to: 100 + 15 * 8, by: 8).map { (o: Int) -> IRQEntry in
        IRQEntry(type: table[o], irq: table[o + 5], pin: table[o + 7])
    }
    let expected: [IRQEntry] = ([0] + Array(1...15).filter { $0 != 2 }).map { (irq: UInt8) -> IRQEntry in
        IRQEntry(type: 3, irq: irq, pin: irq == 0 ? 2 : irq)
    }
    #expect(irqs == expected)
    // The loader only writes it for SMP guests.
    let m = try GuestMemory.withHole(size: 64 << 20)
    _ = try BootLoader(kernel: makeELF(), cmdline: KernelCmdline(""), cpus: 1).load(into: m)
    #expect(try m.read(0x9FC00, count: 4) == [0, 0, 0, 0])
    _ = try BootLoader(kernel: makeELF(), cmdline: KernelCmdline(""), cpus: 3).load(into: m)
    #expect(try m.read(0x9FC00, count: 4) == Array("_MP_".utf8))
    #expect(try m.read(0x9FC10 + 34, count: 1) == [3 + 1 + 1 + 15 + 2])
}
