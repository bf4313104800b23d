import BrigGuestMemory

/// How the vCPU must be started for a loaded kernel.
public enum EntryMode: Equatable, Sendable {
    /// Linux/x86 64-bit boot protocol: long mode, identity paging, RSI = zero page.
    case linux64(entry: UInt64)
    /// Xen PVH: 32-bit protected mode, paging off, EBX = hvm_start_info.
    case pvh(entry: UInt64)
}

/// Result of loading a kernel image into guest memory.
public struct LoadedKernel: Equatable, Sendable {
    public var entry: EntryMode
    /// First byte above the loaded kernel (initrd must go higher).
    public var end: UInt64
    /// The bzImage setup header (bytes 0x1F1..end-of-header) to copy into the zero page.
    public var setupHeader: [UInt8]?
    /// The kernel's initrd_addr_max, when it declares one.
    public var initrdAddrMax: UInt64?
}

public enum KernelImage {
    /// Loads an ELF vmlinux or a bzImage; the format is detected by magic.
    /// `preferPVH`: when an ELF has a PVH note, enter through it.
    public static func load(_ image: [UInt8], into mem: GuestMemory, preferPVH: Bool = true) throws(BootError) -> LoadedKernel {
        try withBytes(image) { (b) throws(BootError) in try load(bytes: b, into: mem, preferPVH: preferPVH) }
    }

    /// The same from borrowed bytes (a mapped file: VirtualMachine loads from one, no copy).
    public static func load(bytes image: UnsafeRawBufferPointer, into mem: GuestMemory, preferPVH: Bool = true) throws(BootError) -> LoadedKernel {
        if image.count >= 4, image[0] == 0x7F, image[1] == 0x45, image[2] == 0x4C, image[3] == 0x46 {
            return try ELFLoader.load(image, into: mem, preferPVH: preferPVH)
        }
        if image.count >= 0x206, image[0x202] == 0x48, image[0x203] == 0x64, image[0x204] == 0x72, image[0x205] == 0x53 {
            return try BzImageLoader.load(image, into: mem)
        }
        let r = ImageReader(bytes: image, what: "kernel")
        throw .badMagic(what: "kernel (neither ELF nor bzImage)", found: UInt64((try? r.u(UInt32.self, 0)) ?? 0))
    }
}

/// ELF64 x86_64 loader (vmlinux or freestanding test guests). Segments load at p_paddr.
public enum ELFLoader {
    public static let xenElfNotePhys32Entry: UInt32 = 18

    public struct Segment: Equatable, Sendable {
        public var fileOffset: UInt64, fileSize: UInt64, paddr: UInt64, memSize: UInt64
    }

    public struct Parsed: Equatable, Sendable {
        public var entry: UInt64
        public var segments: [Segment]
        public var pvhEntry: UInt64?
    }

    /// Parses and validates headers without touching guest memory.
    public static func parse(_ image: [UInt8]) throws(BootError) -> Parsed {
        try withBytes(image) { (b) throws(BootError) in try parse(bytes: b) }
    }

    public static func parse(bytes image: UnsafeRawBufferPointer) throws(BootError) -> Parsed {
        let r = ImageReader(bytes: image, what: "ELF header")
        guard image.count >= 64 else { throw .imageTooSmall(what: "ELF header", size: image.count, needed: 64) }
        guard image[4] == 2 else { throw .unsupported(field: "ELF EI_CLASS (need ELFCLASS64)", value: UInt64(image[4])) }
        guard image[5] == 1 else { throw .unsupported(field: "ELF EI_DATA (need little-endian)", value: UInt64(image[5])) }
        let type = try r.u(UInt16.self, 16)
        guard type == 2 else { throw .unsupported(field: "ELF e_type (need ET_EXEC)", value: UInt64(type)) }
        let machine = try r.u(UInt16.self, 18)
        guard machine == 62 else { throw .unsupported(field: "ELF e_machine (need EM_X86_64)", value: UInt64(machine)) }
        let entry = try r.u(UInt64.self, 24)
        let phoff = try r.u(UInt64.self, 32)
        let phentsize = try r.u(UInt16.self, 54)
        let phnum = try r.u(UInt16.self, 56)
        guard phentsize == 56 else { throw .unsupported(field: "ELF e_phentsize", value: UInt64(phentsize)) }
        let tableEnd = phoff.addingReportingOverflow(UInt64(phnum) * 56)
        guard !tableEnd.overflow, tableEnd.partialValue <= UInt64(image.count) else {
            throw .imageTooSmall(what: "ELF program headers", size: image.count, needed: Int(clamping: tableEnd.partialValue))
        }
        var segments: [Segment] = []
        var pvh: UInt64?
        let pr = ImageReader(bytes: image, what: "ELF program header")
        for i in 0..<Int(phnum) {
            let o = Int(phoff) + i * 56
            let ptype = try pr.u(UInt32.self, o)
            let off = try pr.u(UInt64.self, o + 8)
            let paddr = try pr.u(UInt64.self, o + 24)
            let filesz = try pr.u(UInt64.self, o + 32)
            let memsz = try pr.u(UInt64.self, o + 40)
            let fend = off.addingReportingOverflow(filesz)
            if ptype == 1 || ptype == 4 {
                guard !fend.overflow, fend.partialValue <= UInt64(image.count) else {
                    throw .segmentOutOfImage(index: i, offset: off, size: filesz, imageSize: image.count)
                }
            }
            if ptype == 1 {
                guard filesz <= memsz else { throw .segmentFileSizeExceedsMemSize(index: i, fileSize: filesz, memSize: memsz) }
                segments.append(Segment(fileOffset: off, fileSize: filesz, paddr: paddr, memSize: memsz))
            } else if ptype == 4, pvh == nil {
                pvh = try pvhEntry(inNotes: image, offset: Int(off), size: Int(filesz))
            }
        }
        guard !segments.isEmpty else { throw .noLoadableSegments }
        return Parsed(entry: entry, segments: segments, pvhEntry: pvh)
    }

    /// Walks a PT_NOTE segment looking for the Xen PHYS32_ENTRY note.
    static func pvhEntry(inNotes image: UnsafeRawBufferPointer, offset: Int, size: Int) throws(BootError) -> UInt64? {
        let r = ImageReader(bytes: image, what: "ELF note")
        var p = offset
        let end = offset + size
        func align4(_ v: Int) -> Int { (v + 3) & ~3 }
        while p + 12 <= end {
            let namesz = Int(try r.u(UInt32.self, p))
            let descsz = Int(try r.u(UInt32.self, p + 4))
            let type = try r.u(UInt32.self, p + 8)
            let nameAt = p + 12
            guard namesz <= size, descsz <= size else { throw .unsupported(field: "ELF note size", value: UInt64(max(namesz, descsz))) }
            let descAt = nameAt + align4(namesz)
            guard descAt + descsz <= end else { throw .segmentOutOfImage(index: -1, offset: UInt64(p), size: UInt64(descsz), imageSize: image.count) }
            let isXen = namesz == 4 && image[nameAt..<nameAt + 3].elementsEqual("Xen".utf8)
            if isXen, type == xenElfNotePhys32Entry {
                switch descsz {
                case 4: return UInt64(try r.u(UInt32.self, descAt))
                case 8: return try r.u(UInt64.self, descAt)
                default: throw .unsupported(field: "PVH note descsz", value: UInt64(descsz))
                }
            }
            p = descAt + align4(descsz)
        }
        return nil
    }

    public static func load(_ image: UnsafeRawBufferPointer, into mem: GuestMemory, preferPVH: Bool) throws(BootError) -> LoadedKernel {
        let parsed = try parse(bytes: image)
        var end: UInt64 = 0
        for (i, s) in parsed.segments.enumerated() {
            guard s.paddr >= BootLayout.highMemory else { throw .kernelOverlapsBootData(address: s.paddr) }
            guard mem.isValid(s.paddr, length: s.memSize) else { throw .segmentOutOfMemory(index: i, address: s.paddr, size: s.memSize) }
            try mem.put(raw: UnsafeRawBufferPointer(rebasing: image[Int(s.fileOffset)..<Int(s.fileOffset + s.fileSize)]), at: s.paddr)
            if s.memSize > s.fileSize {
                do { try mem.zero(s.paddr + s.fileSize, length: s.memSize - s.fileSize) } catch { throw .memory(error) }
            }
            end = max(end, s.paddr + s.memSize)
        }
        let mode: EntryMode = if preferPVH, let e = parsed.pvhEntry { .pvh(entry: e) } else { .linux64(entry: parsed.entry) }
        return LoadedKernel(entry: mode, end: end, setupHeader: nil, initrdAddrMax: nil)
    }
}

/// bzImage loader per Documentation/arch/x86/boot.rst (64-bit entry, protocol >= 2.12).
public enum BzImageLoader {
    public static let loadAddress: UInt64 = 0x100000

    public static func load(_ image: UnsafeRawBufferPointer, into mem: GuestMemory) throws(BootError) -> LoadedKernel {
        let r = ImageReader(bytes: image, what: "bzImage setup header")
        let bootFlag = try r.u(UInt16.self, 0x1FE)
        guard bootFlag == 0xAA55 else { throw .badMagic(what: "bzImage boot_flag", found: UInt64(bootFlag)) }
        let version = try r.u(UInt16.self, 0x206)
        guard version >= 0x020C else { throw .unsupported(field: "bzImage boot protocol version (need >= 2.12)", value: UInt64(version)) }
        let xloadflags = try r.u(UInt16.self, 0x236)
        guard xloadflags & 1 != 0 else { throw .unsupported(field: "bzImage xloadflags (XLF_KERNEL_64 missing)", value: UInt64(xloadflags)) }
        var setupSects = Int(image[0x1F1])
        if setupSects == 0 { setupSects = 4 }
        let kernelOffset = (setupSects + 1) * 512
        guard kernelOffset < image.count else { throw .imageTooSmall(what: "bzImage protected-mode kernel", size: image.count, needed: kernelOffset + 1) }
        let headerEnd = 0x202 + Int(image[0x201])
        guard headerEnd <= kernelOffset, headerEnd <= image.count else { throw .unsupported(field: "bzImage setup header length", value: UInt64(image[0x201])) }
        let kernel = UnsafeRawBufferPointer(rebasing: image[kernelOffset...])
        let initSize = UInt64(try r.u(UInt32.self, 0x260))
        let span = max(UInt64(kernel.count), initSize)
        guard mem.isValid(loadAddress, length: span) else { throw .segmentOutOfMemory(index: 0, address: loadAddress, size: span) }
        try mem.put(raw: kernel, at: loadAddress)
        let initrdMax = UInt64(try r.u(UInt32.self, 0x22C))
        return LoadedKernel(entry: .linux64(entry: loadAddress + 0x200), end: loadAddress + span,
                            setupHeader: Array(image[0x1F1..<headerEnd]), initrdAddrMax: initrdMax == 0 ? nil : initrdMax)
    }
}

/// Runs `body` on an array's bytes (the loaders read borrowed bytes; tests and fuzzers pass arrays).
func withBytes<R>(_ a: [UInt8], _ body: (UnsafeRawBufferPointer) throws(BootError) -> R) throws(BootError) -> R {
    let result: Result<R, BootError> = a.withUnsafeBytes { b in
        do throws(BootError) { return .success(try body(b)) } catch { return .failure(error) }
    }
    return try result.get()
}
