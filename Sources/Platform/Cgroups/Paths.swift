/// Where a container's cgroup goes on each hierarchy, from `linux.cgroupsPath` (runc's fs and
/// systemd drivers' rules).
public enum CgroupPath: Equatable, Sendable {
    /// `/a/b`: the same path under every hierarchy's mount.
    case absolute(String)
    /// `a/b`: relative to the calling process's own cgroup on each hierarchy (runc fs driver).
    case relative(String)

    /// The systemd slice used when a systemd path names none.
    public static let defaultSlice = "system.slice"
    /// The scope prefix used when `--systemd-cgroup` is given without a cgroupsPath.
    public static let defaultScopePrefix = "brig"

    /// Interprets `linux.cgroupsPath`.
    /// - Empty/nil: the container id relative to the caller's cgroup (runc's default), or with
    ///   `systemd`, `system.slice:brig:<id>`.
    /// - `systemd`: the path must be `slice:prefix:name` and becomes
    ///   `<expanded slice>/<prefix>-<name>.scope` (the caller checks `systemdRunning()`).
    /// - `..` components are rejected.
    public static func parse(cgroupsPath: String?, containerID: String, systemd: Bool) throws -> CgroupPath {
        let raw = cgroupsPath ?? ""
        if systemd {
            return .absolute(try systemdPath(raw.isEmpty ? "\(defaultSlice):\(defaultScopePrefix):\(containerID)" : raw))
        }
        if raw.isEmpty {
            guard !containerID.isEmpty, !containerID.contains("/"), containerID != ".", containerID != ".." else {
                throw CgroupError.invalidPath(path: containerID, reason: "container id cannot be used as a cgroup name")
            }
            return .relative(containerID)
        }
        let cleaned = try clean(raw)
        return raw.hasPrefix("/") ? .absolute(cleaned) : .relative(String(cleaned.dropFirst()))
    }

    /// The path inside a hierarchy whose mount holds the caller at `ownPath`; always absolute.
    public func inner(ownPath: String) -> String {
        switch self {
        case let .absolute(p): return p
        case let .relative(p): return ownPath == "/" || ownPath.isEmpty ? "/" + p : ownPath + "/" + p
        }
    }

    /// `/a/b` → `/a`; `/a` and `/` → `/`.
    public static func parent(_ path: String) -> String {
        guard let i = path.lastIndex(of: "/"), i != path.startIndex else { return "/" }
        return String(path[..<i])
    }

    /// Removes empty and `.` components, rejects `..`; returns `/`-prefixed.
    static func clean(_ path: String) throws -> String {
        var parts: [Substring] = []
        for c in path.split(separator: "/", omittingEmptySubsequences: true) {
            if c == "." { continue }
            if c == ".." { throw CgroupError.invalidPath(path: path, reason: "\"..\" is not allowed") }
            parts.append(c)
        }
        if parts.isEmpty { throw CgroupError.invalidPath(path: path, reason: "names no cgroup below the root") }
        return "/" + parts.joined(separator: "/")
    }

    /// Translates systemd's `slice:prefix:name` into a cgroup path.
    public static func systemdPath(_ spec: String) throws -> String {
        let f = spec.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard f.count == 3 else {
            throw CgroupError.invalidPath(path: spec, reason: "expected \"slice:prefix:name\" for systemd cgroups")
        }
        let (slice, prefix, name) = (f[0].isEmpty ? defaultSlice : f[0], f[1], f[2])
        guard !name.isEmpty, !name.contains("/"), name != "..", !prefix.contains("/") else {
            throw CgroupError.invalidPath(path: spec, reason: "invalid systemd unit name")
        }
        let parent = try expandSlice(slice)
        let unit = name.hasSuffix(".slice") ? name : (prefix.isEmpty ? name : prefix + "-" + name) + ".scope"
        return (parent == "/" ? "" : parent) + "/" + unit
    }

    /// systemd slice expansion: `a-b.slice` → `/a.slice/a-b.slice`; `-.slice` → `/`.
    public static func expandSlice(_ slice: String) throws -> String {
        let suffix = ".slice"
        guard slice.count > suffix.count, slice.hasSuffix(suffix), !slice.contains("/") else {
            throw CgroupError.invalidPath(path: slice, reason: "invalid slice name")
        }
        let base = slice.dropLast(suffix.count)
        if base == "-" { return "/" }
        var path = "", prefix = ""
        for component in base.split(separator: "-", omittingEmptySubsequences: false) {
            if component.isEmpty { throw CgroupError.invalidPath(path: slice, reason: "invalid slice name") }
            path += "/" + prefix + component + suffix
            prefix += component + "-"
        }
        return path
    }
}
