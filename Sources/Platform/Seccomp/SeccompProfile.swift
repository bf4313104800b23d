import BrigOCI
import CSeccomp

/// Translates and validates `linux.seccomp` from config.json, the way runc does.
public enum SeccompProfile {
    static let base = "linux.seccomp"
    /// Syscalls take at most six arguments.
    public static let maxArguments = 6

    /// Validates `seccomp` and resolves it into a `CompiledProfile`.
    ///
    /// Everything that can be wrong with the profile is reported here, as a `ConfigError` naming the
    /// field (e.g. `linux.seccomp.syscalls[3].action`), so that `create` fails before any process
    /// exists: unknown actions, operators, architectures and flags, bad argument indices, too many
    /// arguments, `SCMP_ACT_NOTIFY` without an absolute `listenerPath` or as the default action.
    /// The result is also built into a libseccomp filter once (and discarded) so that rules
    /// libseccomp rejects are reported here too.
    ///
    /// Like runc: unknown syscall names are skipped (listed in `skipped`); rules whose action is
    /// the default action are dropped; a syscall entry with several conditions on the same
    /// argument index becomes one rule per condition (ORed); with `flags` absent,
    /// `SECCOMP_FILTER_FLAG_SPEC_ALLOW` is used when libseccomp supports it.
    public static func compile(_ seccomp: Seccomp) throws(ConfigError) -> CompiledProfile {
        let defaultAction = try SeccompAction.parse(
            seccomp.defaultAction, errnoRet: seccomp.defaultErrnoRet,
            field: "\(base).defaultAction", errnoField: "\(base).defaultErrnoRet")
        if defaultAction == .notify {
            throw ConfigError("\(base).defaultAction", "SCMP_ACT_NOTIFY cannot be used as the default action")
        }
        var profile = CompiledProfile(defaultAction: defaultAction)
        profile.architectures = try architectures(seccomp.architectures)
        profile.flags = try flags(seccomp.flags)
        profile.listenerPath = try listenerPath(seccomp.listenerPath)
        profile.listenerMetadata = seccomp.listenerMetadata

        for (i, entry) in (seccomp.syscalls ?? []).enumerated() {
            let field = "\(base).syscalls[\(i)]"
            try translate(entry, field: field, into: &profile)
            // Checked per entry, like runc's validator: even if none of its names resolve here.
            if profile.listenerPath == nil && entry.action == "SCMP_ACT_NOTIFY" {
                throw ConfigError("\(base).listenerPath", "required because \(field) uses SCMP_ACT_NOTIFY")
            }
        }
        try FilterBuilder.validate(profile)
        return profile
    }

    static func architectures(_ names: [String]?) throws(ConfigError) -> [SeccompArchitecture] {
        var out: [SeccompArchitecture] = []
        for (i, name) in (names ?? []).enumerated() {
            let field = "\(base).architectures[\(i)]"
            guard SeccompArchitectures.libseccompNames[name] != nil else {
                throw ConfigError(field, "unknown architecture \(quoted(name))")
            }
            guard let token = SeccompArchitectures.token(name) else {
                throw ConfigError(field, "architecture \(name) is not supported by this libseccomp")
            }
            if !out.contains(where: { $0.token == token }) {
                out.append(SeccompArchitecture(name: name, token: token))
            }
        }
        return out
    }

    static func flags(_ names: [String]?) throws(ConfigError) -> SeccompFilterFlags {
        guard let names else {
            // runc: no flags given (not even []) means SPEC_ALLOW where supported (API level 4).
            return seccomp_api_get() >= 4 ? .specAllow : []
        }
        var flags: SeccompFilterFlags = []
        for (i, name) in names.enumerated() {
            guard let known = SeccompFilterFlags.names.first(where: { $0.name == name }) else {
                throw ConfigError("\(base).flags[\(i)]", "unknown seccomp flag \(quoted(name))")
            }
            flags.insert(known.flag)
        }
        return flags
    }

    static func listenerPath(_ path: String?) throws(ConfigError) -> String? {
        guard let path, !path.isEmpty else { return nil }
        guard path.hasPrefix("/") else {
            throw ConfigError("\(base).listenerPath", "must be an absolute path, got \(quoted(path))")
        }
        guard !path.utf8.contains(0), path.utf8.count < 108 else {
            throw ConfigError("\(base).listenerPath", "not a usable Unix socket path (at most 107 bytes, no NUL)")
        }
        return path
    }

    static func translate(_ entry: SeccompSyscall, field: String,
                          into profile: inout CompiledProfile) throws(ConfigError) {
        let action = try SeccompAction.parse(entry.action, errnoRet: entry.errnoRet,
                                             field: "\(field).action", errnoField: "\(field).errnoRet")
        if entry.names.isEmpty {
            throw ConfigError("\(field).names", "must list at least one syscall")
        }
        let ruleSets = try conditions(entry.args ?? [], field: "\(field).args")
        for (j, name) in entry.names.enumerated() {
            let nameField = "\(field).names[\(j)]"
            if name.isEmpty { throw ConfigError(nameField, "empty syscall name") }
            // runc refuses write (its own hand-off); brig hands the notify fd over with sendmsg:
            // trapping either would park the container on a listener that never gets the fd.
            if action == .notify && (name == "write" || name == "sendmsg") {
                throw ConfigError(nameField, "SCMP_ACT_NOTIFY cannot be used for the \(name) syscall")
            }
            if action == profile.defaultAction { continue }
            guard let nr = resolveSyscall(name) else {
                profile.skipped.append(SkippedSyscall(name: name, field: nameField))
                continue
            }
            for set in ruleSets {
                profile.rules.append(SeccompRule(name: name, syscall: nr, action: action,
                                                 conditions: set, field: nameField))
            }
        }
    }

    /// Validates an entry's `args`, returning the condition sets to add as separate rules: one set
    /// with all of them, or (runc) one rule per condition when an index repeats.
    static func conditions(_ args: [SeccompArg], field: String) throws(ConfigError) -> [[SeccompCondition]] {
        if args.count > maxArguments {
            throw ConfigError(field, "\(args.count) conditions; a syscall has at most \(maxArguments) arguments")
        }
        var out: [SeccompCondition] = []
        for (k, arg) in args.enumerated() {
            guard arg.index < UInt(maxArguments) else {
                throw ConfigError("\(field)[\(k)].index", "\(arg.index) is out of range 0...\(maxArguments - 1)")
            }
            guard let op = SeccompOperator(specName: arg.op) else {
                let known = SeccompOperator.allCases.map(\.specName).joined(separator: ", ")
                throw ConfigError("\(field)[\(k)].op", "unknown operator \(quoted(arg.op)); expected one of \(known)")
            }
            out.append(SeccompCondition(index: UInt32(arg.index), op: op, value: arg.value,
                                        valueTwo: arg.valueTwo ?? 0))
        }
        if out.isEmpty { return [[]] }
        let indices = out.map(\.index)
        let repeats = Set(indices).count != indices.count
        return repeats ? out.map { [$0] } : [out]
    }
}
