/// A CPUID feature bit that brig can hide from the guest.
public enum CPUIDFeature: String, CaseIterable, Sendable {
    case cx16, popcnt, xsave, smep, smap, rdrand, hypervisor
    /// (leaf, subleaf, register, bit); register: 0 eax, 1 ebx, 2 ecx, 3 edx.
    var location: (leaf: UInt32, index: UInt32, reg: Int, bit: UInt32) {
        switch self {
        case .cx16: return (1, 0, 2, 13)
        case .popcnt: return (1, 0, 2, 23)
        case .xsave: return (1, 0, 2, 26)
        case .rdrand: return (1, 0, 2, 30)
        case .hypervisor: return (1, 0, 2, 31)
        case .smep: return (7, 0, 1, 7)
        case .smap: return (7, 0, 1, 20)
        }
    }
}

/// Firecracker-style filtering of KVM_GET_SUPPORTED_CPUID for one vCPU. Pure.
public struct CPUIDPolicy: Sendable, Equatable {
    /// Replace the vendor string (e.g. "GenuineIntel"); nil keeps the host's.
    public var vendor: String?
    public var hide: Set<CPUIDFeature>

    public init(vendor: String? = nil, hide: Set<CPUIDFeature> = []) { self.vendor = vendor; self.hide = hide }

    public func apply(_ entries: [CPUIDEntry], cpuIndex: Int, cpuCount: Int) -> [CPUIDEntry] {
        entries.map { e in
            var e = e
            switch e.function {
            case 0:
                if let v = vendor, v.utf8.count == 12 {
                    let b = Array(v.utf8)
                    func word(_ o: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(b[o + $1]) << (8 * $1) } }
                    e.ebx = word(0); e.edx = word(4); e.ecx = word(8)
                }
            case 1:
                // APIC id, logical processor count, hypervisor present, HTT when >1 CPU.
                e.ebx = e.ebx & 0x0000_FFFF | UInt32(cpuIndex & 0xFF) << 24 | UInt32(cpuCount & 0xFF) << 16
                e.ecx |= 1 << 31
                if cpuCount > 1 { e.edx |= 1 << 28 } else { e.edx &= ~(1 << 28) }
            case 6:
                e.eax &= ~UInt32(1 << 1)      // no turbo boost
                e.ecx &= ~UInt32(1 << 3)      // no energy-performance bias
            case 0xA:
                e.eax = 0; e.ebx = 0; e.ecx = 0; e.edx = 0 // no architectural PMU
            case 0xB:
                e.edx = UInt32(cpuIndex)      // x2APIC id
            default: break
            }
            for f in hide where f.location.leaf == e.function && f.location.index == e.index {
                let mask = ~(UInt32(1) << f.location.bit)
                switch f.location.reg {
                case 0: e.eax &= mask
                case 1: e.ebx &= mask
                case 2: e.ecx &= mask
                default: e.edx &= mask
                }
            }
            return e
        }
    }
}
