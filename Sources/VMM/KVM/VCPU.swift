import BrigLinux
#if canImport(Glibc)
import Glibc
#endif
import CBrigKVM

/// A decoded KVM exit, as plain data so exit routing can be tested with synthetic exits.
public enum VcpuExit: Equatable, Sendable {
    case ioIn(port: UInt16, size: Int, count: Int)
    case ioOut(port: UInt16, size: Int, data: [UInt8])
    case mmioRead(address: UInt64, size: Int)
    case mmioWrite(address: UInt64, data: [UInt8])
    case hlt
    case shutdown
    case failEntry(reason: UInt64)
    case internalError(suberror: UInt32, data: [UInt64] = [])
    case systemEvent(type: UInt32)
    /// KVM_RUN returned EINTR (a kick from another thread) or immediate_exit was set.
    case interrupted
    case unknown(reason: UInt32)

    // KVM_EXIT_* numbers from <linux/kvm.h>.
    public static let exitIO: UInt32 = 2, exitHLT: UInt32 = 5, exitMMIO: UInt32 = 6, exitShutdown: UInt32 = 8
    public static let exitFailEntry: UInt32 = 9, exitIntr: UInt32 = 10, exitInternalError: UInt32 = 17, exitSystemEvent: UInt32 = 24
    public static let systemEventShutdown: UInt32 = 1, systemEventReset: UInt32 = 2, systemEventCrash: UInt32 = 3
}

/// A vCPU fd with its mmap'd kvm_run page.
public final class VCPU: @unchecked Sendable {
    public let fd: Int32
    public let id: Int
    private let runPage: UnsafeMutableRawPointer
    private let runSize: Int
    private var run: UnsafeMutablePointer<kvm_run> { runPage.assumingMemoryBound(to: kvm_run.self) }

    init(fd: Int32, id: Int, run: UnsafeMutableRawPointer, runSize: Int) {
        self.fd = fd; self.id = id; self.runPage = run; self.runSize = runSize
    }

    deinit { munmap(runPage, runSize); close(fd) }

    /// Makes the next (or current, after a signal) KVM_RUN return at once.
    public func setImmediateExit(_ on: Bool) { brig_run_set_immediate_exit(run, on ? 1 : 0) }

    /// One KVM_RUN. EINTR/EAGAIN become `.interrupted`.
    public func runOnce() throws(KVMError) -> VcpuExit {
        if brig_kvm_ioctl_val(fd, brig_KVM_RUN(), 0) < 0 {
            if errno == EINTR || errno == EAGAIN { return .interrupted }
            throw .ioctl(.last("KVM_RUN failed"))
        }
        let r = run
        switch brig_run_exit_reason(r) {
        case VcpuExit.exitIO:
            let size = Int(brig_run_io_size(r)), count = Int(brig_run_io_count(r)), port = brig_run_io_port(r)
            if brig_run_io_direction(r) == 0 { return .ioIn(port: port, size: size, count: count) }
            let p = UnsafeRawBufferPointer(start: runPage + Int(brig_run_io_data_offset(r)), count: size * count)
            return .ioOut(port: port, size: size, data: Array(p))
        case VcpuExit.exitMMIO:
            let len = Int(min(brig_run_mmio_len(r), 8))
            if brig_run_mmio_is_write(r) == 0 { return .mmioRead(address: brig_run_mmio_addr(r), size: len) }
            return .mmioWrite(address: brig_run_mmio_addr(r), data: Array(UnsafeRawBufferPointer(start: brig_run_mmio_data(r), count: len)))
        case VcpuExit.exitHLT: return .hlt
        case VcpuExit.exitShutdown: return .shutdown
        case VcpuExit.exitFailEntry: return .failEntry(reason: brig_run_fail_entry_reason(r))
        case VcpuExit.exitIntr: return .interrupted
        case VcpuExit.exitInternalError:
            let n = min(brig_run_internal_ndata(r), 16)
            return .internalError(suberror: brig_run_internal_suberror(r), data: (0..<n).map { brig_run_internal_data(r, $0) })
        case VcpuExit.exitSystemEvent: return .systemEvent(type: brig_run_system_event_type(r))
        case let other: return .unknown(reason: other)
        }
    }

    /// Where the data for the pending PIO-in exit goes (size*count bytes).
    public func ioInBuffer() -> UnsafeMutableRawBufferPointer {
        let r = run
        return UnsafeMutableRawBufferPointer(start: runPage + Int(brig_run_io_data_offset(r)),
                                             count: Int(brig_run_io_size(r)) * Int(brig_run_io_count(r)))
    }

    /// Where the data for the pending MMIO-read exit goes.
    public func mmioReadBuffer() -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: brig_run_mmio_data(run), count: Int(min(brig_run_mmio_len(run), 8)))
    }

    private func get<T>(_ request: UInt, _ name: String, _ initial: T) throws(KVMError) -> T {
        var v = initial
        _ = try check(brig_kvm_ioctl(fd, request, &v), name)
        return v
    }
    private func set<T>(_ request: UInt, _ name: String, _ value: T) throws(KVMError) {
        var v = value
        _ = try check(brig_kvm_ioctl(fd, request, &v), name)
    }

    public func getRegs() throws(KVMError) -> kvm_regs { try get(brig_KVM_GET_REGS(), "KVM_GET_REGS", kvm_regs()) }
    public func setRegs(_ r: kvm_regs) throws(KVMError) { try set(brig_KVM_SET_REGS(), "KVM_SET_REGS", r) }
    public func getSregs() throws(KVMError) -> kvm_sregs { try get(brig_KVM_GET_SREGS(), "KVM_GET_SREGS", kvm_sregs()) }
    public func setSregs(_ s: kvm_sregs) throws(KVMError) { try set(brig_KVM_SET_SREGS(), "KVM_SET_SREGS", s) }

    /// x87 control word 0x37F and MXCSR 0x1F80, as after reset.
    public func setDefaultFPU() throws(KVMError) {
        var f = kvm_fpu()
        f.fcw = 0x37F
        f.mxcsr = 0x1F80
        try set(brig_KVM_SET_FPU(), "KVM_SET_FPU", f)
    }

    public func setCPUID(_ entries: [CPUIDEntry]) throws(KVMError) {
        try withCountedArray(entries.map(\.raw), request: brig_KVM_SET_CPUID2(), name: "KVM_SET_CPUID2")
    }

    /// KVM_SET_MSRS; returns how many were accepted (KVM stops at the first it rejects).
    @discardableResult
    public func setMSRs(_ msrs: [(index: UInt32, value: UInt64)]) throws(KVMError) -> Int {
        let entries = msrs.map { m in var e = kvm_msr_entry(); e.index = m.index; e.data = m.value; return e }
        return Int(try withCountedArray(entries, request: brig_KVM_SET_MSRS(), name: "KVM_SET_MSRS"))
    }

    /// Calls an ioctl taking `struct { __u32 n; __u32 pad; T entries[]; }`.
    @discardableResult
    func withCountedArray<T>(_ entries: [T], request: UInt, name: String) throws(KVMError) -> Int32 {
        let stride = MemoryLayout<T>.stride, bytes = 8 + entries.count * stride
        let buf = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 8)
        defer { buf.deallocate() }
        memset(buf, 0, bytes)
        buf.storeBytes(of: UInt32(entries.count), as: UInt32.self)
        let p = (buf + 8).bindMemory(to: T.self, capacity: entries.count)
        for (i, e) in entries.enumerated() { p[i] = e }
        return try check(brig_kvm_ioctl(fd, request, buf), name)
    }
}
