import BrigLinux
#if canImport(Glibc)
import Glibc
#endif
import CBrigKVM

public enum KVMError: Error, Equatable, CustomStringConvertible {
    case open(SystemError)
    case ioctl(SystemError)
    case apiVersion(Int32)
    case missingCapability(String)
    case mmap(SystemError)

    public var description: String {
        switch self {
        case let .open(e): return e.description + (e.errno == ENOENT ? " (no KVM on this host: load kvm_intel/kvm_amd or enable nested virtualisation)" : e.errno == EACCES ? " (add the user to the kvm group)" : "")
        case let .ioctl(e), let .mmap(e): return e.description
        case let .apiVersion(v): return "KVM API version \(v), brig needs 12"
        case let .missingCapability(c): return "host KVM lacks \(c)"
        }
    }
}

@inline(__always) func check(_ r: Int32, _ name: String) throws(KVMError) -> Int32 {
    if r < 0 { throw .ioctl(.last("\(name) failed")) }
    return r
}

/// What kind of KVM the host offers, for diagnostics.
public struct HostKVMInfo: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable { case vmx = "VMX (Intel VT-x)", svm = "SVM (AMD-V)", pvm = "PVM (kvm_pvm, software-assisted nested virtualisation)", unknown = "unknown" }
    public var kind: Kind
    public var cpuVendor: String

    /// Pure classification from /proc/cpuinfo text and whether /sys/module/kvm_pvm exists: the
    /// first `flags` and `vendor_id` lines. Works on the UTF-8 bytes (no Character, Substring or
    /// Set): every stdlib routine the boot path touches is another 64 KiB of text faulted in.
    public static func classify(cpuinfo: String, pvmModuleLoaded: Bool) -> HostKVMInfo {
        var flags: [[UInt8]]?, vendor: String?
        for line in Array(cpuinfo.utf8).split(separator: 0x0A) where flags == nil || vendor == nil {
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { continue }
            let key = trimmed(line[..<colon]), value = trimmed(line[(colon + 1)...])
            if key.elementsEqual("flags".utf8), flags == nil { flags = value.split(separator: 0x20).map { Array($0) } }
            if key.elementsEqual("vendor_id".utf8), vendor == nil { vendor = String(decoding: value, as: UTF8.self) }
        }
        func has(_ flag: String) -> Bool { flags?.contains { $0.elementsEqual(flag.utf8) } ?? false }
        let kind: Kind = pvmModuleLoaded ? .pvm : has("vmx") ? .vmx : has("svm") ? .svm : .unknown
        return HostKVMInfo(kind: kind, cpuVendor: vendor ?? "unknown")
    }

    /// `bytes` without leading and trailing spaces and tabs.
    static func trimmed(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        let blank: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x09 }
        guard let first = bytes.firstIndex(where: { !blank($0) }), let last = bytes.lastIndex(where: { !blank($0) }) else { return [] }
        return bytes[first...last]
    }

    public static func detect() -> HostKVMInfo {
        var st = stat()
        return classify(cpuinfo: readTextFile("/proc/cpuinfo") ?? "", pvmModuleLoaded: stat("/sys/module/kvm_pvm", &st) == 0)
    }

    public var description: String { "host KVM: \(kind.rawValue), CPU vendor \(cpuVendor)" }
}

func readTextFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var out: [UInt8] = [], buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = read(fd, &buf, buf.count)
        if n <= 0 { break }
        out += buf[0..<n]
    }
    return String(decoding: out, as: UTF8.self)
}

/// The /dev/kvm system fd.
public final class KVM: @unchecked Sendable {
    public let fd: Int32
    public let vcpuMmapSize: Int

    public init(path: String = "/dev/kvm") throws(KVMError) {
        let fd = open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw .open(.last("cannot open \(path)")) }
        self.fd = fd
        let v = brig_kvm_ioctl_val(fd, brig_KVM_GET_API_VERSION(), 0)
        guard v == 12 else { close(fd); throw .apiVersion(v) }
        for (cap, name) in [(brig_KVM_CAP_IRQCHIP(), "KVM_CAP_IRQCHIP"), (brig_KVM_CAP_USER_MEMORY(), "KVM_CAP_USER_MEMORY"),
                            (brig_KVM_CAP_EXT_CPUID(), "KVM_CAP_EXT_CPUID")] where brig_kvm_ioctl_val(fd, brig_KVM_CHECK_EXTENSION(), UInt(cap)) <= 0 {
            close(fd); throw .missingCapability(name)
        }
        let size = brig_kvm_ioctl_val(fd, brig_KVM_GET_VCPU_MMAP_SIZE(), 0)
        guard size > 0 else { let e = SystemError.last("KVM_GET_VCPU_MMAP_SIZE failed"); close(fd); throw .ioctl(e) }
        self.vcpuMmapSize = Int(size)
    }

    deinit { close(fd) }

    public func hasCapability(_ cap: UInt32) -> Bool { brig_kvm_ioctl_val(fd, brig_KVM_CHECK_EXTENSION(), UInt(cap)) > 0 }

    /// KVM_GET_SUPPORTED_CPUID.
    public func supportedCPUID() throws(KVMError) -> [CPUIDEntry] {
        let max = 256
        let buf = UnsafeMutableRawPointer.allocate(byteCount: 8 + max * MemoryLayout<kvm_cpuid_entry2>.stride, alignment: 8)
        defer { buf.deallocate() }
        memset(buf, 0, 8 + max * MemoryLayout<kvm_cpuid_entry2>.stride)
        buf.storeBytes(of: UInt32(max), as: UInt32.self)
        _ = try check(brig_kvm_ioctl(fd, brig_KVM_GET_SUPPORTED_CPUID(), buf), "KVM_GET_SUPPORTED_CPUID")
        let n = Int(buf.load(as: UInt32.self))
        let entries = (buf + 8).assumingMemoryBound(to: kvm_cpuid_entry2.self)
        return (0..<n).map { CPUIDEntry(entries[$0]) }
    }

    public func createVM() throws(KVMError) -> VM {
        let vm = try check(brig_kvm_ioctl_val(fd, brig_KVM_CREATE_VM(), 0), "KVM_CREATE_VM")
        return VM(fd: vm, kvm: self)
    }
}

/// One CPUID leaf as plain data (kvm_cpuid_entry2 without the padding).
public struct CPUIDEntry: Equatable, Sendable {
    public var function: UInt32, index: UInt32, flags: UInt32
    public var eax: UInt32, ebx: UInt32, ecx: UInt32, edx: UInt32
    public init(function: UInt32, index: UInt32 = 0, flags: UInt32 = 0, eax: UInt32 = 0, ebx: UInt32 = 0, ecx: UInt32 = 0, edx: UInt32 = 0) {
        self.function = function; self.index = index; self.flags = flags
        self.eax = eax; self.ebx = ebx; self.ecx = ecx; self.edx = edx
    }
    init(_ e: kvm_cpuid_entry2) {
        self.init(function: e.function, index: e.index, flags: e.flags, eax: e.eax, ebx: e.ebx, ecx: e.ecx, edx: e.edx)
    }
    var raw: kvm_cpuid_entry2 {
        var e = kvm_cpuid_entry2()
        e.function = function; e.index = index; e.flags = flags
        e.eax = eax; e.ebx = ebx; e.ecx = ecx; e.edx = edx
        return e
    }
}

/// A VM fd: memory slots, in-kernel irqchip and PIT, IRQ lines, vCPUs.
public final class VM: @unchecked Sendable {
    public let fd: Int32
    public let kvm: KVM
    init(fd: Int32, kvm: KVM) { self.fd = fd; self.kvm = kvm }
    deinit { close(fd) }

    public func setUserMemoryRegion(slot: UInt32, guestAddress: UInt64, size: UInt64, host: UnsafeMutableRawPointer) throws(KVMError) {
        var r = kvm_userspace_memory_region(slot: slot, flags: 0, guest_phys_addr: guestAddress, memory_size: size,
                                            userspace_addr: UInt64(UInt(bitPattern: host)))
        _ = try check(brig_kvm_ioctl(fd, brig_KVM_SET_USER_MEMORY_REGION(), &r), "KVM_SET_USER_MEMORY_REGION")
    }

    /// TSS and identity-map pages (needed on Intel for real-mode emulation), then PIC+IOAPIC and PIT.
    public func createIrqchipAndPIT(tssAddress: UInt64 = 0xFFFB_D000, pit: Bool = true) throws(KVMError) {
        _ = try check(brig_kvm_ioctl_val(fd, brig_KVM_SET_TSS_ADDR(), UInt(tssAddress)), "KVM_SET_TSS_ADDR")
        var idmap = tssAddress - 0x1000
        _ = try check(brig_kvm_ioctl(fd, brig_KVM_SET_IDENTITY_MAP_ADDR(), &idmap), "KVM_SET_IDENTITY_MAP_ADDR")
        _ = try check(brig_kvm_ioctl_val(fd, brig_KVM_CREATE_IRQCHIP(), 0), "KVM_CREATE_IRQCHIP")
        guard pit else { return }
        var cfg = kvm_pit_config()
        _ = try check(brig_kvm_ioctl(fd, brig_KVM_CREATE_PIT2(), &cfg), "KVM_CREATE_PIT2")
    }

    /// KVM_IRQ_LINE.
    public func setIRQLine(_ irq: UInt32, level: Bool) throws(KVMError) {
        _ = try check(brig_kvm_irq_line(fd, irq, level ? 1 : 0), "KVM_IRQ_LINE")
    }

    public func createVCPU(id: Int) throws(KVMError) -> VCPU {
        let vfd = try check(brig_kvm_ioctl_val(fd, brig_KVM_CREATE_VCPU(), UInt(id)), "KVM_CREATE_VCPU")
        let p = mmap(nil, kvm.vcpuMmapSize, PROT_READ | PROT_WRITE, MAP_SHARED, vfd, 0)
        guard let p, p != MAP_FAILED else { let e = SystemError.last("mmap of \(kvm.vcpuMmapSize) bytes failed"); close(vfd); throw .mmap(e) }
        return VCPU(fd: vfd, id: id, run: p, runSize: kvm.vcpuMmapSize)
    }
}
