import Testing
import BrigGuestMemory
@testable import BrigBoot

func memory(_ size: UInt64 = 64 << 20) throws -> GuestMemory { try GuestMemory.withHole(size: size) }

@Test func elfSegmentsLoadAtPhysicalAddressesAndBssIsZeroed() throws {
    let m = try memory()
    try m.write([0xAA, 0xAA, 0xAA, 0xAA], at: 0x200000)
    let k = try KernelImage.load(makeELF(code: [1, 2], paddr: 0x200000, memsz: 4), into: m)
    #expect(k.entry == .linux64(entry: 0x200000))
    #expect(try m.read(0x200000, count: 4) == [1, 2, 0, 0])
    #expect(k.end == 0x200004)
}

@Test func pvhNoteSelectsPVHEntryUnlessDisabled() throws {
    let image = makeELF(pvh: 0x1000123)
    #expect(try ELFLoader.parse(image).pvhEntry == 0x1000123)
    #expect(try KernelImage.load(image, into: memory()).entry == .pvh(entry: 0x1000123))
    #expect(try KernelImage.load(image, into: memory(), preferPVH: false).entry == .linux64(entry: 0x100000))
}

@Test func malformedELFIsRejectedWithTypedErrors() throws {
    let m = try memory()
    var bad = makeELF(); bad[4] = 1
    #expect(throws: BootError.unsupported(field: "ELF EI_CLASS (need ELFCLASS64)", value: 1)) { try KernelImage.load(bad, into: m) }
    bad = makeELF(); bad[18] = 3
    #expect(throws: BootError.unsupported(field: "ELF e_machine (need EM_X86_64)", value: 3)) { try KernelImage.load(bad, into: m) }
    #expect(throws: BootError.imageTooSmall(what: "ELF header", size: 20, needed: 64)) { try KernelImage.load(Array(makeELF().prefix(20)), into: m) }
    bad = makeELF(); put(&bad, 56, le(UInt16(400)))      // phnum beyond the file
    #expect(throws: BootError.self) { try KernelImage.load(bad, into: m) }
    bad = makeELF(); put(&bad, 64 + 8, le(UInt64.max - 2))  // p_offset wraps
    #expect(throws: BootError.segmentOutOfImage(index: 0, offset: UInt64.max - 2, size: 1, imageSize: bad.count)) { try KernelImage.load(bad, into: m) }
    bad = makeELF(); put(&bad, 64 + 40, le(UInt64(0)))    // memsz < filesz
    #expect(throws: BootError.segmentFileSizeExceedsMemSize(index: 0, fileSize: 1, memSize: 0)) { try KernelImage.load(bad, into: m) }
    #expect(throws: BootError.segmentOutOfMemory(index: 0, address: 0x8000000, size: 1)) {
        try KernelImage.load(makeELF(paddr: 0x8000000), into: m)
    }
    #expect(throws: BootError.kernelOverlapsBootData(address: 0x7000)) { try KernelImage.load(makeELF(paddr: 0x7000), into: m) }
    #expect(throws: BootError.self) { try KernelImage.load([0x4D, 0x5A, 0, 0], into: m) }
}

@Test func bzImageLoadsProtectedModeKernelAt1MiB() throws {
    let m = try memory()
    let k = try KernelImage.load(makeBzImage(), into: m)
    #expect(k.entry == .linux64(entry: 0x100200))
    #expect(try m.read(0x100000, count: 2) == [0x90, 0xF4])
    #expect(k.setupHeader?.count == 0x268 - 0x1F1)
    #expect(k.initrdAddrMax == 0x37FF_FFFF)
    #expect(k.end == 0x102000)
}

@Test func bzImageWithoutA64BitEntryOrTooOldIsRejected() throws {
    let m = try memory()
    #expect(throws: BootError.unsupported(field: "bzImage boot protocol version (need >= 2.12)", value: 0x0204)) {
        try KernelImage.load(makeBzImage(version: 0x0204), into: m)
    }
    #expect(throws: BootError.unsupported(field: "bzImage xloadflags (XLF_KERNEL_64 missing)", value: 0)) {
        try KernelImage.load(makeBzImage(xloadflags: 0), into: m)
    }
    var bad = makeBzImage(); bad[0x1FE] = 0
    #expect(throws: BootError.badMagic(what: "bzImage boot_flag", found: 0xAA00)) { try KernelImage.load(bad, into: m) }
    bad = makeBzImage(); bad[0x1F1] = 200                  // setup beyond the file
    #expect(throws: BootError.self) { try KernelImage.load(bad, into: m) }
}

@Test func initrdGoesAtTopOfLowMemoryPageAligned() throws {
    #expect(try BootLoader.initrdAddress(size: 0x1800, floor: 0x200000, limit: 0x4000000) == 0x3FFE000)
    #expect(throws: BootError.initrdDoesNotFit(size: 0x5000000, limit: 0x4000000)) {
        try BootLoader.initrdAddress(size: 0x5000000, floor: 0x200000, limit: 0x4000000)
    }
    #expect(throws: BootError.self) { try BootLoader.initrdAddress(size: 0x3F00000, floor: 0x200000, limit: 0x4000000) }
}
