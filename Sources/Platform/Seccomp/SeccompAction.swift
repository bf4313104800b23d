import BrigOCI

/// A seccomp filter action, as the kernel encodes it in a filter's return value.
/// `errno` and `trace` carry the 16-bit data that goes with them.
public enum SeccompAction: Sendable, Hashable, Codable {
    case allow
    case errno(UInt16)
    case killThread
    case killProcess
    case trap
    case trace(UInt16)
    case log
    case notify

    /// The default errno for `SCMP_ACT_ERRNO` / `SCMP_ACT_TRACE` without `errnoRet` (runc: EPERM).
    public static let defaultErrno: UInt16 = 1

    /// The action value libseccomp and the kernel use (`SCMP_ACT_*` / `SECCOMP_RET_*`).
    public var rawValue: UInt32 {
        switch self {
        case .allow: return 0x7fff_0000
        case .errno(let code): return 0x0005_0000 | UInt32(code)
        case .killThread: return 0x0000_0000
        case .killProcess: return 0x8000_0000
        case .trap: return 0x0003_0000
        case .trace(let code): return 0x7ff0_0000 | UInt32(code)
        case .log: return 0x7ffc_0000
        case .notify: return 0x7fc0_0000
        }
    }

    /// Every action name the runtime spec defines, as `runc features` lists them.
    public static let knownNames: [String] = [
        "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP",
    ]

    /// Parses an `SCMP_ACT_*` name with its optional `errnoRet`.
    ///
    /// `errnoRet` is only meaningful for `SCMP_ACT_ERRNO` and `SCMP_ACT_TRACE` (default EPERM);
    /// the runtime spec requires failing when it is given for any other action.
    /// - Parameters:
    ///   - field: JSON path of the action, used in errors (e.g. `linux.seccomp.syscalls[3].action`).
    ///   - errnoField: JSON path of the errno value, used in errors.
    public static func parse(_ name: String, errnoRet: UInt32?, field: String,
                             errnoField: String) throws(ConfigError) -> SeccompAction {
        let action: SeccompAction
        switch name {
        case "SCMP_ACT_ALLOW": action = .allow
        case "SCMP_ACT_ERRNO": action = .errno(defaultErrno)
        case "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD": action = .killThread
        case "SCMP_ACT_KILL_PROCESS": action = .killProcess
        case "SCMP_ACT_TRAP": action = .trap
        case "SCMP_ACT_TRACE": action = .trace(defaultErrno)
        case "SCMP_ACT_LOG": action = .log
        case "SCMP_ACT_NOTIFY": action = .notify
        case "":
            throw ConfigError(field, "required; expected one of \(knownNames.joined(separator: ", "))")
        default:
            throw ConfigError(field, "unknown action \(quoted(name)); expected one of \(knownNames.joined(separator: ", "))")
        }
        guard let errnoRet else { return action }
        guard let code = UInt16(exactly: errnoRet) else {
            throw ConfigError(errnoField, "\(errnoRet) does not fit in the 16-bit seccomp return data")
        }
        switch action {
        case .errno: return .errno(code)
        case .trace: return .trace(code)
        default:
            throw ConfigError(errnoField, "only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an errno, not \(name)")
        }
    }
}

/// Quotes a user-supplied string for an error message, keeping it short and printable.
func quoted(_ text: String) -> String {
    var out = ""
    for scalar in text.unicodeScalars.prefix(64) {
        out += scalar.isASCII && scalar.value >= 0x20 && scalar.value < 0x7f
            ? String(scalar) : scalar.escaped(asASCII: true)
    }
    if text.unicodeScalars.count > 64 { out += "…" }
    return "\"\(out)\""
}
