// The validated, resolved form of `linux.seccomp`: plain data (Codable, so the runtime can hand it
// to the container's init process), ready for `load()` to turn into a kernel filter.

/// One argument condition of a rule, in libseccomp's terms (`struct scmp_arg_cmp`).
/// For `.maskedEqual`, `value` is the mask and `valueTwo` the value compared after masking.
public struct SeccompCondition: Sendable, Hashable, Codable {
    /// Syscall argument index, 0...5.
    public var index: UInt32
    public var op: SeccompOperator
    public var value: UInt64
    public var valueTwo: UInt64

    public init(index: UInt32, op: SeccompOperator, value: UInt64, valueTwo: UInt64 = 0) {
        self.index = index; self.op = op; self.value = value; self.valueTwo = valueTwo
    }
}

/// One libseccomp rule: a resolved syscall, its action, and conditions that must all hold.
public struct SeccompRule: Sendable, Hashable, Codable {
    /// The syscall name from the profile.
    public var name: String
    /// Native syscall number (negative for libseccomp pseudo-syscalls).
    public var syscall: Int32
    public var action: SeccompAction
    /// ANDed conditions; empty means the rule matches every call.
    public var conditions: [SeccompCondition]
    /// Where the rule came from, e.g. `linux.seccomp.syscalls[3].names[0]`, for error messages.
    public var field: String

    public init(name: String, syscall: Int32, action: SeccompAction, conditions: [SeccompCondition],
                field: String) {
        self.name = name; self.syscall = syscall; self.action = action
        self.conditions = conditions; self.field = field
    }
}

/// An architecture the filter also covers, besides the native one (which is always included).
public struct SeccompArchitecture: Sendable, Hashable, Codable {
    /// The runtime-spec name, e.g. `SCMP_ARCH_X86`.
    public var name: String
    /// libseccomp's token for it (an `AUDIT_ARCH_*` value).
    public var token: UInt32

    public init(name: String, token: UInt32) { self.name = name; self.token = token }
}

/// A syscall name the profile lists that libseccomp cannot resolve on this architecture.
/// Such names are skipped, as runc does; callers should debug-log them.
public struct SkippedSyscall: Sendable, Hashable, Codable {
    public var name: String
    /// e.g. `linux.seccomp.syscalls[12].names[3]`.
    public var field: String

    public init(name: String, field: String) { self.name = name; self.field = field }
}

/// A seccomp profile that passed validation; produced by `SeccompProfile.compile(_:)`.
public struct CompiledProfile: Sendable, Hashable, Codable {
    public var defaultAction: SeccompAction
    public var architectures: [SeccompArchitecture]
    public var flags: SeccompFilterFlags
    /// Rules in profile order. Rules whose action equals the default action are dropped (runc).
    public var rules: [SeccompRule]
    /// Unknown syscall names that were skipped.
    public var skipped: [SkippedSyscall]
    /// Absolute path of the seccomp agent's Unix socket, when set.
    public var listenerPath: String?
    /// Opaque `listenerMetadata` forwarded to the agent.
    public var listenerMetadata: String?

    public init(defaultAction: SeccompAction, architectures: [SeccompArchitecture] = [],
                flags: SeccompFilterFlags = [], rules: [SeccompRule] = [], skipped: [SkippedSyscall] = [],
                listenerPath: String? = nil, listenerMetadata: String? = nil) {
        self.defaultAction = defaultAction; self.architectures = architectures; self.flags = flags
        self.rules = rules; self.skipped = skipped
        self.listenerPath = listenerPath; self.listenerMetadata = listenerMetadata
    }

    /// True when some rule uses `SCMP_ACT_NOTIFY`, i.e. `load()` returns a listener fd.
    public var usesNotify: Bool { rules.contains { $0.action == .notify } }
}
