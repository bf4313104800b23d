/// Intel MultiProcessor Specification 1.4 tables, so Linux finds every vCPU and the IOAPIC
/// without ACPI. Placed at the start of the EBDA (reserved in e820), where Linux scans.
public enum MPTable {
    public static let address: UInt64 = BootLayout.ebdaStart
    public static let lapicAddress: UInt32 = 0xFEE0_0000
    public static let ioapicAddress: UInt32 = 0xFEC0_0000
    public static let isaIRQs = 16

    /// Floating pointer (16 bytes) followed by the configuration table.
    public static func build(cpus: Int) -> [UInt8] {
        precondition(cpus >= 1 && cpus <= 254)
        let ioapicID = UInt8(cpus)
        var entries: [UInt8] = []
        var count = 0
        func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        for i in 0..<cpus {
            // Processor: type 0, APIC id, APIC version, flags (enabled, BSP), signature, features.
            entries += [0, UInt8(i), 0x14, i == 0 ? 3 : 1] + le(UInt32(0x600)) + le(UInt32(0x201)) + [UInt8](repeating: 0, count: 8)
            count += 1
        }
        entries += [1, 0] + Array("ISA   ".utf8); count += 1                                   // bus 0: ISA
        entries += [2, ioapicID, 0x11, 1] + le(ioapicAddress); count += 1                      // IOAPIC
        // ISA IRQ n -> IOAPIC pin n, except IRQ 0 (the PIT) -> pin 2, as on a PC and as KVM's
        // default GSI routing delivers it (GSI 0 reaches IOAPIC pin 2); IRQ 2 is the PIC cascade.
        // (IRQ 0 on pin 0 left Linux's check_timer waiting for ticks that never came there.)
        for irq in 0..<UInt8(isaIRQs) where irq != 2 {
            entries += [3, 0, 0, 0, 0, irq, ioapicID, irq == 0 ? 2 : irq]; count += 1
        }
        entries += [4, 3, 0, 0, 0, 0, 0xFF, 0]; count += 1                                     // ExtINT -> LINT0
        entries += [4, 1, 0, 0, 0, 0, 0xFF, 1]; count += 1                                     // NMI -> LINT1

        var header = Array("PCMP".utf8) + le(UInt16(44 + entries.count)) + [4, 0]
        header += Array("BRIG    ".utf8) + Array("BRIG VMM    ".utf8)
        header += le(UInt32(0)) + le(UInt16(0)) + le(UInt16(count)) + le(lapicAddress) + le(UInt16(0)) + [0, 0]
        var table = header + entries
        table[7] = checksum(table)

        var fp = Array("_MP_".utf8) + le(UInt32(address + 16)) + [1, 4, 0, 0, 0, 0, 0, 0]
        fp[10] = checksum(fp)
        return fp + table
    }

    /// The byte that makes the sum of all bytes zero.
    static func checksum(_ b: [UInt8]) -> UInt8 {
        0 &- b.reduce(0, &+)
    }
}
