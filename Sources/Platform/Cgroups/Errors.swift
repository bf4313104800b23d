import BrigLinux
import Glibc

/// Every failure of the cgroups library. Messages name the spec field (e.g.
/// `linux.resources.memory.swappiness`) and/or the cgroup file involved.
public enum CgroupError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A spec field that this cgroup version (or this host) cannot honour.
    case unsupported(field: String, reason: String)
    /// A spec field this kind of host can never honour (runc's `invalid configuration: …`).
    case invalidConfiguration(field: String, reason: String)
    /// A spec field whose value is invalid.
    case invalidValue(field: String, value: String, reason: String)
    /// Writing `value` to `file` failed.
    case writeFailed(file: String, value: String, field: String?, SystemError)
    /// Reading `file` failed.
    case readFailed(file: String, SystemError)
    /// A cgroup file held text that could not be parsed.
    case parseFailed(file: String, content: String)
    /// `linux.cgroupsPath` could not be used.
    case invalidPath(path: String, reason: String)
    /// `--systemd-cgroup` was requested but systemd is not running on this host.
    case systemdNotRunning
    /// The host's cgroup mounts could not be understood.
    case noCgroupMounts(String)
    /// `memory.checkBeforeUpdate`: the new limit is below current usage.
    case limitBelowUsage(field: String, limit: Int64, usage: UInt64)
    /// Freezing or thawing did not settle in time.
    case freezeTimeout(path: String, wanted: String, last: String)
    /// A directory could not be created or removed.
    case directory(path: String, SystemError)
    /// The eBPF device program could not be loaded or attached.
    case bpf(String, SystemError)
    /// The container's cgroup (`path`) is frozen (`reason` names the file that says so, its own
    /// or an ancestor's cgroup.freeze): a container started in it would block until thawed.
    case frozen(path: String, reason: String)
    /// `path` could not be created because an ancestor's hierarchy limit (`limitFile`,
    /// cgroup.max.depth or cgroup.max.descendants) is reached.
    case hierarchyLimit(path: String, limitFile: String, detail: String)

    public var description: String {
        switch self {
        case let .unsupported(field, reason):
            return "\(field): \(reason)"
        case let .invalidConfiguration(field, reason):
            return "invalid configuration: \(field): \(reason)"
        case let .invalidValue(field, value, reason):
            return "\(field): invalid value \(value): \(reason)"
        case let .writeFailed(file, value, field, err):
            let what = field.map { " (\($0))" } ?? ""
            return "write \(value.debugDescription) to \(file)\(what): \(err.description)"
        case let .readFailed(file, err):
            return "read \(file): \(err.description)"
        case let .parseFailed(file, content):
            return "cannot parse \(file): \(content.prefix(80).debugDescription)"
        case let .invalidPath(path, reason):
            return "linux.cgroupsPath \(path.debugDescription): \(reason)"
        case .systemdNotRunning:
            return "--systemd-cgroup: systemd is not running on this host (/run/systemd/system is absent)"
        case let .noCgroupMounts(reason):
            return "cgroups: \(reason)"
        case let .limitBelowUsage(field, limit, usage):
            return "\(field): rejecting memory limit \(limit) below current usage \(usage) (checkBeforeUpdate)"
        case let .freezeTimeout(path, wanted, last):
            return "cgroup \(path): timed out waiting for state \(wanted) (last seen \(last.debugDescription))"
        case let .directory(path, err):
            return "cgroup directory \(path): \(err.description)"
        case let .bpf(what, err):
            return "devices eBPF program: \(what): \(err.description)"
        case let .frozen(path, reason):
            return "container's cgroup unexpectedly frozen: \(path) (\(reason); a container in it would block until it is thawed)"
        case let .hierarchyLimit(path, limitFile, detail):
            return "cannot create cgroup \(path): \(limitFile) is \(detail)"
        }
    }

    /// Whether the kernel refused for lack of permission (EACCES, EPERM, EROFS): what a rootless
    /// caller without a delegated cgroup gets.
    public var isPermissionDenied: Bool {
        guard let e = errno else { return false }
        return e == EACCES || e == EPERM || e == EROFS
    }

    /// The errno of an underlying system error, if any.
    public var errno: Int32? {
        switch self {
        case let .writeFailed(_, _, _, e), let .readFailed(_, e), let .directory(_, e), let .bpf(_, e): return e.errno
        default: return nil
        }
    }
}
