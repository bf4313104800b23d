@testable import BrigBoot

func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }

func put(_ b: inout [UInt8], _ off: Int, _ bytes: [UInt8]) {
    if b.count < off + bytes.count { b += [UInt8](repeating: 0, count: off + bytes.count - b.count) }
    b.replaceSubrange(off..<off + bytes.count, with: bytes)
}

/// A minimal ELF64 x86_64 executable: one PT_LOAD of `code` at `paddr`, optionally a PT_NOTE
/// carrying XEN_ELFNOTE_PHYS32_ENTRY.
func makeELF(code: [UInt8] = [0xF4], paddr: UInt64 = 0x100000, memsz: UInt64? = nil, pvh: UInt64? = nil) -> [UInt8] {
    var b = [UInt8](repeating: 0, count: 64)
    put(&b, 0, [0x7F, 0x45, 0x4C, 0x46, 2, 1, 1])
    put(&b, 16, le(UInt16(2))); put(&b, 18, le(UInt16(62))); put(&b, 20, le(UInt32(1)))
    put(&b, 24, le(paddr))                       // e_entry
    put(&b, 32, le(UInt64(64)))                  // e_phoff
    put(&b, 52, le(UInt16(64))); put(&b, 54, le(UInt16(56)))
    let phnum = pvh == nil ? 1 : 2
    put(&b, 56, le(UInt16(phnum)))
    let dataOff = 64 + 56 * phnum
    var ph = le(UInt32(1)) + le(UInt32(5)) + le(UInt64(dataOff)) + le(paddr) + le(paddr)
    ph += le(UInt64(code.count)) + le(memsz ?? UInt64(code.count)) + le(UInt64(0x1000))
    put(&b, 64, ph)
    put(&b, dataOff, code)
    if let pvh {
        let note = le(UInt32(4)) + le(UInt32(8)) + le(UInt32(18)) + Array("Xen\0".utf8) + le(pvh)
        let noteOff = dataOff + code.count
        let nph = le(UInt32(4)) + le(UInt32(4)) + le(UInt64(noteOff)) + le(UInt64(0)) + le(UInt64(0))
            + le(UInt64(note.count)) + le(UInt64(note.count)) + le(UInt64(4))
        put(&b, 64 + 56, nph)
        put(&b, noteOff, note)
    }
    return b
}

/// A minimal bzImage: 1 setup sector + boot sector, header version and 64-bit xloadflags.
func makeBzImage(version: UInt16 = 0x020F, xloadflags: UInt16 = 1, payload: [UInt8] = [0x90, 0xF4]) -> [UInt8] {
    var b = [UInt8](repeating: 0, count: 2 * 512)
    b[0x1F1] = 1                                  // setup_sects
    put(&b, 0x1FE, le(UInt16(0xAA55)))
    b[0x201] = 0x66                              // header length -> ends at 0x268
    put(&b, 0x202, Array("HdrS".utf8))
    put(&b, 0x206, le(version))
    put(&b, 0x22C, le(UInt32(0x37FF_FFFF)))      // initrd_addr_max
    put(&b, 0x236, le(xloadflags))
    put(&b, 0x260, le(UInt32(0x2000)))           // init_size
    return b + payload
}
