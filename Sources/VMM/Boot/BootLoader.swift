import BrigGuestMemory

/// Loads kernel, initrd and command line into guest memory and writes every boot structure
/// (zero page or PVH start_info, e820, page tables, GDT). Returns the vCPU start state.
public struct BootLoader {
    public var kernel: [UInt8]
    public var initrd: [UInt8]?
    public var cmdline: KernelCmdline
    public var preferPVH: Bool
    /// vCPU count; with more than one an MP table describes them (and the IOAPIC). A one-vCPU
    /// guest gets none (Linux runs it in virtual wire mode through the PIC): with one, its boot
    /// made ~1300 fewer port-I/O exits but was no faster in the VM test host (docs/vmm.md).
    public var cpus: Int

    public init(kernel: [UInt8], initrd: [UInt8]? = nil, cmdline: KernelCmdline, preferPVH: Bool = true, cpus: Int = 1) {
        self.kernel = kernel; self.initrd = initrd; self.cmdline = cmdline; self.preferPVH = preferPVH; self.cpus = cpus
    }

    public struct Result: Sendable, Equatable {
        public var cpu: BootCPUState
        public var kernel: LoadedKernel
        public var initrdAddress: UInt64?
    }

    /// Highest 4 KiB-aligned address for `size` bytes in `[floor, limit)`.
    public static func initrdAddress(size: UInt64, floor: UInt64, limit: UInt64) throws(BootError) -> UInt64 {
        guard size <= limit, (limit - size) & ~0xFFF >= floor else { throw .initrdDoesNotFit(size: size, limit: limit) }
        return (limit - size) & ~0xFFF
    }

    public func load(into mem: GuestMemory) throws(BootError) -> Result {
        try withBytes(kernel) { (k) throws(BootError) in
            try withBytes(initrd ?? []) { (rd) throws(BootError) in
                try Self.load(kernel: k, initrd: initrd == nil ? nil : rd, cmdline: cmdline, preferPVH: preferPVH, cpus: cpus, into: mem)
            }
        }
    }

    /// The same from borrowed bytes: VirtualMachine passes the kernel's and initrd's files mapped
    /// read-only, so each byte is copied once, into guest memory (reading them into arrays first
    /// zero-filled and copied ~40 MB more: ~300 ms of a boot in the VM test host, where copies
    /// are emulated, and as much transient RSS as the files' size).
    public static func load(kernel: UnsafeRawBufferPointer, initrd: UnsafeRawBufferPointer?, cmdline: KernelCmdline,
                            preferPVH: Bool = true, cpus: Int = 1, into mem: GuestMemory) throws(BootError) -> Result {
        let loaded = try KernelImage.load(bytes: kernel, into: mem, preferPVH: preferPVH)
        let line = try cmdline.bytes()
        try mem.put(line, at: BootLayout.cmdline)

        var rd: (address: UInt64, size: UInt64)?
        if let initrd {
            var limit = mem.lowMemoryEnd
            if let max = loaded.initrdAddrMax { limit = min(limit, max + 1) }
            let a = try Self.initrdAddress(size: UInt64(initrd.count), floor: loaded.end, limit: limit)
            try mem.put(raw: initrd, at: a)
            rd = (a, UInt64(initrd.count))
        }
        if cpus > 1 { try mem.put(MPTable.build(cpus: cpus), at: MPTable.address) }
        let e820 = E820Entry.map(for: mem)
        let cpu: BootCPUState
        switch loaded.entry {
        case let .linux64(entry):
            let zp = try ZeroPage.build(e820: e820, cmdlineAddress: BootLayout.cmdline, cmdlineLength: line.count - 1,
                                        initrd: rd, header: loaded.setupHeader)
            try mem.put(zp, at: BootLayout.zeroPage)
            try PageTables.write(into: mem)
            cpu = .linux64(entry: entry)
        case let .pvh(entry):
            var modlist: UInt64?
            if let rd {
                try mem.put(PVHStartInfo.module(address: rd.address, size: rd.size), at: BootLayout.pvhModlist)
                modlist = BootLayout.pvhModlist
            }
            try mem.put(PVHStartInfo.memmap(e820), at: BootLayout.pvhMemmap)
            try mem.put(PVHStartInfo.build(cmdlineAddress: BootLayout.cmdline, memmapAddress: BootLayout.pvhMemmap,
                                           memmapEntries: e820.count, modlistAddress: modlist, moduleCount: rd == nil ? 0 : 1),
                        at: BootLayout.pvhStartInfo)
            cpu = .pvh(entry: entry)
        }
        for (i, d) in cpu.gdt.enumerated() { try mem.put(d, at: BootLayout.gdtAddress + UInt64(i * 8)) }
        try mem.put(UInt64(0), at: BootLayout.idtAddress)
        return Result(cpu: cpu, kernel: loaded, initrdAddress: rd?.address)
    }
}
