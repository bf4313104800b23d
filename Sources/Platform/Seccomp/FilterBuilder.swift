import BrigLinux
import BrigOCI
import CSeccomp
import Glibc

/// Why libseccomp refused to build a filter: the libseccomp call, the profile field it was
/// building, and the errno libseccomp returned.
struct FilterBuildFailure: Error {
    var operation: String
    var field: String
    var errno: Int32

    var configError: ConfigError {
        ConfigError(field, "libseccomp refused it (\(operation)): \(String(cString: strerror(errno)))")
    }

    var systemError: SystemError { SystemError(errno: errno, "seccomp: \(operation) for \(field)") }
}

/// Builds libseccomp filter contexts from a `CompiledProfile`. Shared by validation (build once and
/// release), loading, and BPF export, so all three see the same filter.
enum FilterBuilder {
    /// Builds a context; the caller owns it and must `seccomp_release` it.
    static func make(_ profile: CompiledProfile) throws(FilterBuildFailure) -> scmp_filter_ctx {
        let base = SeccompProfile.base
        guard let ctx = seccomp_init(profile.defaultAction.rawValue) else {
            throw FilterBuildFailure(operation: "seccomp_init", field: "\(base).defaultAction", errno: EINVAL)
        }
        do throws(FilterBuildFailure) {
            try configure(ctx, profile)
            for (i, arch) in profile.architectures.enumerated() {
                let rc = seccomp_arch_add(ctx, arch.token)
                if rc < 0 && rc != -EEXIST {
                    // EDOM: libseccomp can't mix byte orders in one filter (e.g. s390x on x86_64).
                    let why = rc == -EDOM ? "seccomp_arch_add \(arch.name): byte order differs from the native architecture"
                        : "seccomp_arch_add \(arch.name)"
                    throw FilterBuildFailure(operation: why, field: "\(base).architectures[\(i)]", errno: -rc)
                }
            }
            for rule in profile.rules { try add(rule, to: ctx) }
        } catch {
            seccomp_release(ctx)
            throw error
        }
        return ctx
    }

    /// The kernel's limit on a filter program (BPF_MAXINSNS).
    static let maxInstructions = 4096

    /// Builds the filter once and throws what libseccomp refuses, or a program too big for the
    /// kernel, as a `ConfigError`.
    static func validate(_ profile: CompiledProfile) throws(ConfigError) {
        let ctx: scmp_filter_ctx
        do { ctx = try make(profile) } catch { throw error.configError }
        defer { seccomp_release(ctx) }
        let bytes: Int
        do { bytes = try CompiledProfile.export(ctx).count } catch {
            throw ConfigError(SeccompProfile.base, "cannot generate the filter: \(error)")
        }
        let count = bytes / 8 + EnosysStub.instructions(for: profile).count
        if count > maxInstructions {
            throw ConfigError("\(SeccompProfile.base).syscalls",
                              "the filter needs \(count) BPF instructions; the kernel allows at most \(maxInstructions)")
        }
    }

    static func configure(_ ctx: scmp_filter_ctx, _ profile: CompiledProfile) throws(FilterBuildFailure) {
        let field = SeccompProfile.base
        // The runtime sets no_new_privs itself when process.noNewPrivileges asks for it.
        try attr(ctx, SCMP_FLTATR_CTL_NNP, 0, "no_new_privs attribute", field)
        // Report the kernel's own errno rather than libseccomp's ECANCELED.
        _ = seccomp_attr_set(ctx, SCMP_FLTATR_API_SYSRAWRC, 1)
        if profile.flags.contains(.log) {
            try attr(ctx, SCMP_FLTATR_CTL_LOG, 1, "SECCOMP_FILTER_FLAG_LOG", "\(field).flags")
        }
        if profile.flags.contains(.specAllow) {
            try attr(ctx, SCMP_FLTATR_CTL_SSB, 1, "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "\(field).flags")
        }
        if profile.rules.count > 32 {
            // Binary-tree syscall lookup for big profiles (runc); older libseccomp lacks it.
            _ = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2)
        }
    }

    static func attr(_ ctx: scmp_filter_ctx, _ attribute: scmp_filter_attr, _ value: UInt32,
                     _ what: String, _ field: String) throws(FilterBuildFailure) {
        let rc = seccomp_attr_set(ctx, attribute, value)
        if rc < 0 { throw FilterBuildFailure(operation: "seccomp_attr_set \(what)", field: field, errno: -rc) }
    }

    static func add(_ rule: SeccompRule, to ctx: scmp_filter_ctx) throws(FilterBuildFailure) {
        let conditions = rule.conditions.map {
            scmp_arg_cmp(arg: $0.index, op: scmp_compare(rawValue: $0.op.rawValue),
                         datum_a: $0.value, datum_b: $0.valueTwo)
        }
        let rc = conditions.withUnsafeBufferPointer {
            seccomp_rule_add_array(ctx, rule.action.rawValue, rule.syscall, UInt32($0.count), $0.baseAddress)
        }
        if rc < 0 {
            throw FilterBuildFailure(operation: "seccomp_rule_add \(rule.name)", field: rule.field, errno: -rc)
        }
    }
}
