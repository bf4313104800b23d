import BrigOCI
import CSeccomp

/// An argument comparison operator (`SCMP_CMP_*`); raw values are libseccomp's `scmp_compare`.
public enum SeccompOperator: UInt32, Sendable, Hashable, Codable, CaseIterable {
    case notEqual = 1, lessThan, lessOrEqual, equal, greaterOrEqual, greaterThan, maskedEqual

    /// The runtime-spec name, e.g. `SCMP_CMP_MASKED_EQ`.
    public var specName: String {
        switch self {
        case .notEqual: return "SCMP_CMP_NE"
        case .lessThan: return "SCMP_CMP_LT"
        case .lessOrEqual: return "SCMP_CMP_LE"
        case .equal: return "SCMP_CMP_EQ"
        case .greaterOrEqual: return "SCMP_CMP_GE"
        case .greaterThan: return "SCMP_CMP_GT"
        case .maskedEqual: return "SCMP_CMP_MASKED_EQ"
        }
    }

    /// Parses an `SCMP_CMP_*` name; `nil` if unknown.
    public init?(specName: String) {
        guard let op = Self.allCases.first(where: { $0.specName == specName }) else { return nil }
        self = op
    }
}

/// Filter flags from `linux.seccomp.flags`.
public struct SeccompFilterFlags: OptionSet, Sendable, Hashable, Codable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `SECCOMP_FILTER_FLAG_TSYNC`: accepted and ignored, as runc does (init is single-threaded).
    public static let tsync = SeccompFilterFlags(rawValue: 1 << 0)
    /// `SECCOMP_FILTER_FLAG_LOG`: log every action except `SCMP_ACT_ALLOW`.
    public static let log = SeccompFilterFlags(rawValue: 1 << 1)
    /// `SECCOMP_FILTER_FLAG_SPEC_ALLOW`: don't force the speculative store bypass mitigation.
    public static let specAllow = SeccompFilterFlags(rawValue: 1 << 2)
    /// `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`: a notified syscall waits killably once received.
    public static let waitKillableRecv = SeccompFilterFlags(rawValue: 1 << 5)

    /// Runtime-spec flag names with their values (the kernel's `SECCOMP_FILTER_FLAG_*` bits).
    public static let names: [(name: String, flag: SeccompFilterFlags)] = [
        ("SECCOMP_FILTER_FLAG_TSYNC", .tsync),
        ("SECCOMP_FILTER_FLAG_LOG", .log),
        ("SECCOMP_FILTER_FLAG_SPEC_ALLOW", .specAllow),
        ("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", .waitKillableRecv),
    ]
}

/// Runtime-spec architecture names and the libseccomp names they resolve through.
public enum SeccompArchitectures {
    /// `SCMP_ARCH_*` → libseccomp arch name (as `seccomp_arch_resolve_name` knows it).
    public static let libseccompNames: [String: String] = [
        "SCMP_ARCH_X86": "x86", "SCMP_ARCH_X86_64": "x86_64", "SCMP_ARCH_X32": "x32",
        "SCMP_ARCH_ARM": "arm", "SCMP_ARCH_AARCH64": "aarch64",
        "SCMP_ARCH_MIPS": "mips", "SCMP_ARCH_MIPS64": "mips64", "SCMP_ARCH_MIPS64N32": "mips64n32",
        "SCMP_ARCH_MIPSEL": "mipsel", "SCMP_ARCH_MIPSEL64": "mipsel64",
        "SCMP_ARCH_MIPSEL64N32": "mipsel64n32",
        "SCMP_ARCH_PPC": "ppc", "SCMP_ARCH_PPC64": "ppc64", "SCMP_ARCH_PPC64LE": "ppc64le",
        "SCMP_ARCH_S390": "s390", "SCMP_ARCH_S390X": "s390x",
        "SCMP_ARCH_PARISC": "parisc", "SCMP_ARCH_PARISC64": "parisc64",
        "SCMP_ARCH_RISCV64": "riscv64", "SCMP_ARCH_LOONGARCH64": "loongarch64",
        "SCMP_ARCH_M68K": "m68k", "SCMP_ARCH_SH": "sh", "SCMP_ARCH_SHEB": "sheb",
    ]

    /// The libseccomp token (`SCMP_ARCH_*` value, an `AUDIT_ARCH_*`) for a runtime-spec name:
    /// `nil` if the name is unknown or this libseccomp build doesn't support it.
    public static func token(_ specName: String) -> UInt32? {
        guard let name = libseccompNames[specName] else { return nil }
        let token = seccomp_arch_resolve_name(name)
        return token == 0 ? nil : token
    }

    /// The token of the architecture this process runs on.
    public static var native: UInt32 { seccomp_arch_native() }
}

/// Resolves a syscall name for the native architecture as runc does (`seccomp_syscall_resolve_name`).
/// Returns `nil` for names libseccomp doesn't know. Negative numbers are libseccomp pseudo-syscalls
/// (syscalls that exist only on some architectures), which rules accept.
public func resolveSyscall(_ name: String) -> Int32? {
    guard !name.isEmpty, !name.utf8.contains(0) else { return nil }
    let nr = name.withCString { seccomp_syscall_resolve_name($0) }
    return nr == __NR_SCMP_ERROR ? nil : nr
}
