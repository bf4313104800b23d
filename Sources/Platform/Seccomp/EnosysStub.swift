import CSeccomp

/// One classic-BPF instruction (`struct sock_filter`).
struct BPFInstruction: Equatable {
    var code: UInt16
    var jt: UInt8 = 0
    var jf: UInt8 = 0
    var k: UInt32

    static let loadArch = BPFInstruction(code: 0x20, k: 4)      // ld [4]  (seccomp_data.arch)
    static let loadNumber = BPFInstruction(code: 0x20, k: 0)    // ld [0]  (seccomp_data.nr)
    static func jumpEqual(_ k: UInt32, _ jt: UInt8, _ jf: UInt8) -> Self { Self(code: 0x15, jt: jt, jf: jf, k: k) }
    static func jumpGreater(_ k: UInt32, _ jt: UInt8, _ jf: UInt8) -> Self { Self(code: 0x25, jt: jt, jf: jf, k: k) }
    static func jumpSet(_ k: UInt32, _ jt: UInt8, _ jf: UInt8) -> Self { Self(code: 0x45, jt: jt, jf: jf, k: k) }
    static func jump(_ k: UInt32) -> Self { Self(code: 0x05, k: k) }
    static func ret(_ k: UInt32) -> Self { Self(code: 0x06, k: k) }

    /// The 8 bytes the kernel expects, in host byte order.
    var bytes: [UInt8] {
        withUnsafeBytes(of: code) { Array($0) } + [jt, jf] + withUnsafeBytes(of: k) { Array($0) }
    }
}

/// runc's "-ENOSYS stub": a prefix for deny-by-default filters so that syscalls newer than any the
/// profile names fail with ENOSYS, not the default errno. libc then falls back to older syscalls
/// (clone3 → clone, faccessat2 → faccessat, …) instead of failing with EPERM.
///
/// Per architecture in the filter (native plus `architectures`), a syscall number above the largest
/// one the profile's rules resolve to on that architecture returns `SCMP_ACT_ERRNO(ENOSYS)`; all
/// else falls through to libseccomp's program. x32 shares AUDIT_ARCH_X86_64 and is told apart by
/// the x32 syscall bit; on s390(x) the multiplexing syscall 0 also gets ENOSYS, as in runc.
enum EnosysStub {
    static let enosys = SeccompAction.errno(38).rawValue
    static let x32Bit: UInt32 = 0x4000_0000
    static let x86_64: UInt32 = 0xC000_003E
    static let x32Token: UInt32 = 0x4000_003E
    static let s390: Set<UInt32> = [0x0000_0016, 0x8000_0016]

    /// The stub for `profile`, or `[]` when it needs none: permissive defaults (allow, log, trace),
    /// a default that already returns ENOSYS, or no resolvable rules.
    static func instructions(for profile: CompiledProfile) -> [BPFInstruction] {
        switch profile.defaultAction {
        case .allow, .log, .trace, .errno(38): return []
        default: break
        }
        // Largest syscall per AUDIT_ARCH, split by x32 bit for x86_64: (arch, x32?) → max.
        var sections: [(arch: UInt32, x32: Bool, max: UInt32)] = []
        var tokens = [SeccompArchitectures.native]
        for arch in profile.architectures where !tokens.contains(arch.token) { tokens.append(arch.token) }
        for token in tokens {
            var largest: Int32 = 0
            for rule in profile.rules {
                let nr = rule.name.withCString { seccomp_syscall_resolve_name_arch(token, $0) }
                if nr > largest { largest = nr }
            }
            guard largest > 0 else { continue }
            let isX32 = token == x32Token
            sections.append((isX32 ? x86_64 : token, isX32, UInt32(largest)))
        }
        guard !sections.isEmpty else { return [] }
        return assemble(sections)
    }

    /// Lays out: per arch `ld arch; jeq ARCH` → `ld nr; [jset x32]; jgt MAX → ENOSYS`; then the
    /// shared tail `ja filter; ENOSYS: ret ERRNO(ENOSYS)`; libseccomp's program follows.
    static func assemble(_ sections: [(arch: UInt32, x32: Bool, max: UInt32)]) -> [BPFInstruction] {
        // Group by audit arch, keeping order.
        var arches: [UInt32] = []
        for s in sections where !arches.contains(s.arch) { arches.append(s.arch) }
        var blocks: [[Placeholder]] = []
        for arch in arches {
            let native = sections.first { $0.arch == arch && !$0.x32 }?.max
            let x32 = sections.first { $0.arch == arch && $0.x32 }?.max
            var block: [Placeholder] = [.fixed(.loadArch), .skipBlockUnlessArch(arch), .fixed(.loadNumber)]
            if s390.contains(arch) { block.append(.enosysIfEqual(0)) }
            switch (native, x32) {
            case let (n?, x?):
                block.append(.fixed(.jumpSet(x32Bit, 2, 0)))
                block += [.enosysIfGreater(n), .toFilter]
                block += [.enosysIfGreater(x), .toFilter]
            case let (n?, nil): block += [.enosysIfGreater(n), .toFilter]
            case let (nil, x?): block += [.enosysIfGreater(x), .toFilter]
            case (nil, nil): continue
            }
            blocks.append(block)
        }
        let flat = blocks.flatMap { $0 }
        // Positions: instructions 0..<flat.count, then `ja filter` at flat.count, ENOSYS at +1.
        let enosysAt = flat.count + 1, filterAt = flat.count + 2
        var out: [BPFInstruction] = []
        var blockEnd = 0
        var position = 0
        for block in blocks {
            blockEnd += block.count
            for item in block {
                let next = position + 1
                switch item {
                case .fixed(let insn): out.append(insn)
                case .skipBlockUnlessArch(let arch):
                    out.append(.jumpEqual(arch, 0, offset(from: next, to: blockEnd)))
                case .enosysIfEqual(let nr):
                    out.append(.jumpEqual(nr, offset(from: next, to: enosysAt), 0))
                case .enosysIfGreater(let max):
                    out.append(.jumpGreater(max, offset(from: next, to: enosysAt), 0))
                case .toFilter:
                    out.append(.jump(UInt32(filterAt - next)))
                }
                position += 1
            }
        }
        out.append(.jump(1))           // no arch matched: into the filter
        out.append(.ret(enosys))
        return out
    }

    /// A conditional jump's 8-bit offset. The stub is a handful of instructions per architecture
    /// (at most ~25 architectures), so offsets stay far below 255.
    static func offset(from: Int, to: Int) -> UInt8 { UInt8(to - from) }

    enum Placeholder {
        case fixed(BPFInstruction)
        case skipBlockUnlessArch(UInt32)
        case enosysIfEqual(UInt32)
        case enosysIfGreater(UInt32)
        case toFilter
    }
}
