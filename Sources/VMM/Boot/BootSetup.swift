import BrigGuestMemory

/// Offsets into struct boot_params (the "zero page"), from Documentation/arch/x86/boot.rst
/// and arch/x86/include/uapi/asm/bootparam.h.
public enum ZeroPage {
    public static let size = 4096
    public static let extRamdiskImage = 0x0C0
    public static let extRamdiskSize = 0x0C4
    public static let extCmdLinePtr = 0x0C8
    public static let e820Entries = 0x1E8
    public static let setupHeader = 0x1F1
    public static let vidMode = 0x1FA
    public static let bootFlag = 0x1FE
    public static let headerMagic = 0x202
    public static let version = 0x206
    public static let typeOfLoader = 0x210
    public static let loadflags = 0x211
    public static let ramdiskImage = 0x218
    public static let ramdiskSize = 0x21C
    public static let heapEndPtr = 0x224
    public static let cmdLinePtr = 0x228
    public static let cmdlineSize = 0x238
    public static let e820Table = 0x2D0
    public static let e820Max = 128

    /// Builds boot_params bytes. `setupHeader` (from a bzImage) is copied first, then brig's fields.
    public static func build(e820: [E820Entry], cmdlineAddress: UInt64, cmdlineLength: Int,
                             initrd: (address: UInt64, size: UInt64)?, header: [UInt8]?) throws(BootError) -> [UInt8] {
        guard e820.count <= e820Max else { throw .tooManyE820Entries(e820.count) }
        var z = [UInt8](repeating: 0, count: size)
        func put<T: FixedWidthInteger>(_ v: T, _ off: Int) {
            withUnsafeBytes(of: v.littleEndian) { for (i, b) in $0.enumerated() { z[off + i] = b } }
        }
        if let h = header {
            for (i, b) in h.enumerated() { z[setupHeader + i] = b }
        } else {
            put(UInt16(0xAA55), bootFlag)
            put(UInt32(0x5372_6448), headerMagic) // "HdrS"
            put(UInt16(0x020F), version)
        }
        put(UInt16(0xFFFF), vidMode)              // "normal"
        z[typeOfLoader] = 0xFF                   // undefined loader
        z[loadflags] |= 0x01 | 0x80              // LOADED_HIGH | CAN_USE_HEAP
        put(UInt16(0xFE00), heapEndPtr)
        put(UInt32(truncatingIfNeeded: cmdlineAddress), cmdLinePtr)
        put(UInt32(truncatingIfNeeded: cmdlineAddress >> 32), extCmdLinePtr)
        put(UInt32(cmdlineLength), cmdlineSize)
        if let rd = initrd {
            put(UInt32(truncatingIfNeeded: rd.address), ramdiskImage)
            put(UInt32(truncatingIfNeeded: rd.size), ramdiskSize)
            put(UInt32(truncatingIfNeeded: rd.address >> 32), extRamdiskImage)
            put(UInt32(truncatingIfNeeded: rd.size >> 32), extRamdiskSize)
        }
        z[e820Entries] = UInt8(e820.count)
        for (i, e) in e820.enumerated() {
            let o = e820Table + i * 20
            put(e.address, o); put(e.size, o + 8); put(e.kind.rawValue, o + 16)
        }
        return z
    }
}

/// Xen PVH hvm_start_info (xen/include/public/arch-x86/hvm/start_info.h), version 1.
public enum PVHStartInfo {
    public static let magic: UInt32 = 0x336E_C578
    public static let size = 56

    public static func build(cmdlineAddress: UInt64, memmapAddress: UInt64, memmapEntries: Int,
                             modlistAddress: UInt64?, moduleCount: Int) -> [UInt8] {
        var z = [UInt8](repeating: 0, count: size)
        func put<T: FixedWidthInteger>(_ v: T, _ off: Int) {
            withUnsafeBytes(of: v.littleEndian) { for (i, b) in $0.enumerated() { z[off + i] = b } }
        }
        put(magic, 0); put(UInt32(1), 4)
        put(UInt32(moduleCount), 12); put(modlistAddress ?? 0, 16)
        put(cmdlineAddress, 24); put(memmapAddress, 40); put(UInt32(memmapEntries), 48)
        return z
    }

    /// hvm_memmap_table_entry array (24 bytes each).
    public static func memmap(_ e820: [E820Entry]) -> [UInt8] {
        var out: [UInt8] = []
        for e in e820 {
            withUnsafeBytes(of: e.address.littleEndian) { out += $0 }
            withUnsafeBytes(of: e.size.littleEndian) { out += $0 }
            withUnsafeBytes(of: e.kind.rawValue.littleEndian) { out += $0 }
            out += [0, 0, 0, 0]
        }
        return out
    }

    /// One hvm_modlist_entry (32 bytes): the initrd.
    public static func module(address: UInt64, size: UInt64) -> [UInt8] {
        var out: [UInt8] = []
        withUnsafeBytes(of: address.littleEndian) { out += $0 }
        withUnsafeBytes(of: size.littleEndian) { out += $0 }
        return out + [UInt8](repeating: 0, count: 16)
    }
}

/// Identity page tables for the first 4 GiB with 2 MiB pages: PML4 -> PDPT -> 4 PDs.
public enum PageTables {
    public static let present: UInt64 = 1, writable: UInt64 = 2, pageSize: UInt64 = 0x80

    /// (address, 8-byte entry) pairs; pure, so tests can check every entry.
    public static func entries() -> [(address: UInt64, value: UInt64)] {
        var out: [(UInt64, UInt64)] = [(BootLayout.pml4, BootLayout.pdpt | present | writable)]
        for d in 0..<UInt64(4) {
            let pd = BootLayout.pageDirectories + d * 0x1000
            out.append((BootLayout.pdpt + d * 8, pd | present | writable))
            for i in 0..<UInt64(512) {
                out.append((pd + i * 8, ((d << 30) | (i << 21)) | present | writable | pageSize))
            }
        }
        return out
    }

    public static func write(into mem: GuestMemory) throws(BootError) {
        for e in entries() { try mem.put(e.value, at: e.address) }
    }
}

/// A segment descriptor as data; BrigKVM turns it into kvm_segment.
public struct Segment: Equatable, Sendable {
    public var base: UInt64 = 0, limit: UInt32 = 0xFFFFF, selector: UInt16 = 0
    public var type: UInt8 = 0, present = true, dpl: UInt8 = 0, db = false, s = true, l = false, g = true

    /// The 8-byte GDT encoding.
    public var gdtEntry: UInt64 {
        let access = UInt64(type) | (s ? 0x10 : 0) | UInt64(dpl & 3) << 5 | (present ? 0x80 : 0)
        let flags = (l ? UInt64(0x2) : 0) | (db ? 0x4 : 0) | (g ? 0x8 : 0)
        return (UInt64(limit) & 0xFFFF) | (base & 0xFF_FFFF) << 16 | access << 40
            | (UInt64(limit) >> 16 & 0xF) << 48 | flags << 52 | (base >> 24 & 0xFF) << 56
    }
}

/// Initial vCPU state as plain data (no KVM types).
public struct BootCPUState: Equatable, Sendable {
    public var rip: UInt64 = 0, rsp: UInt64 = 0, rbp: UInt64 = 0, rsi: UInt64 = 0, rbx: UInt64 = 0
    public var rflags: UInt64 = 0x2
    public var cr0: UInt64 = 0, cr3: UInt64 = 0, cr4: UInt64 = 0, efer: UInt64 = 0
    public var code = Segment(), data = Segment(), tss = Segment()
    public var gdtBase: UInt64 = BootLayout.gdtAddress, gdtLimit: UInt16 = 31
    public var idtBase: UInt64 = BootLayout.idtAddress, idtLimit: UInt16 = 0

    public static let cr0PE: UInt64 = 1, cr0ET: UInt64 = 0x10, cr0PG: UInt64 = 0x8000_0000
    public static let cr4PAE: UInt64 = 0x20, eferLME: UInt64 = 0x100, eferLMA: UInt64 = 0x400

    /// GDT: null, code (0x08), data (0x10), TSS (0x18).
    public var gdt: [UInt64] { [0, code.gdtEntry, data.gdtEntry, tss.gdtEntry] }

    static func flat(long: Bool) -> BootCPUState {
        var s = BootCPUState()
        s.code = Segment(selector: 0x08, type: 0xB, db: !long, l: long)
        s.data = Segment(selector: 0x10, type: 0x3, db: true)
        s.tss = Segment(selector: 0x18, type: 0xB, s: false, g: false)
        s.tss.limit = 0x67
        return s
    }

    /// Linux 64-bit boot protocol: long mode, paging on with identity tables, RSI = zero page.
    public static func linux64(entry: UInt64) -> BootCPUState {
        var s = flat(long: true)
        s.rip = entry; s.rsp = BootLayout.bootStack; s.rbp = BootLayout.bootStack; s.rsi = BootLayout.zeroPage
        s.cr0 = cr0PE | cr0ET | cr0PG; s.cr3 = BootLayout.pml4; s.cr4 = cr4PAE; s.efer = eferLME | eferLMA
        return s
    }

    /// PVH: 32-bit flat protected mode, paging off, EBX = hvm_start_info.
    public static func pvh(entry: UInt64) -> BootCPUState {
        var s = flat(long: false)
        s.rip = entry; s.rbx = BootLayout.pvhStartInfo
        s.cr0 = cr0PE | cr0ET
        return s
    }
}
