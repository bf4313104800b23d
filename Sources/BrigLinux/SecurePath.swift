import CBrigShim
import Glibc

/// Path resolution that can never leave a root directory: every lookup goes through
/// openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), so `..` and absolute symlinks inside the
/// bundle resolve as if the root were `/`. Results are O_PATH fds; mount onto them via
/// `/proc/self/fd/N`, so that a path swapped after the check cannot redirect the mount.
public enum SecurePath {
    static let resolve = UInt64(BRIG_RESOLVE_IN_ROOT | BRIG_RESOLVE_NO_MAGICLINKS)

    public static func openRoot(_ root: String) throws(SystemError) -> Int32 {
        try Files.open(root, Int32(BRIG_O_PATH) | O_DIRECTORY)
    }

    /// Opens `path` (absolute or relative, interpreted inside `rootFD`) as O_PATH.
    public static func open(_ rootFD: Int32, _ path: String, flags: Int32 = Int32(BRIG_O_PATH)) throws(SystemError) -> Int32 {
        try sys("open \(path) inside the rootfs") {
            brig_openat2(rootFD, path, flags | O_CLOEXEC, 0, resolve)
        }
    }

    public enum Kind { case directory, file }

    /// Opens `path` inside the root, creating missing parents as directories and the last
    /// component as `kind`. Returns an O_PATH fd.
    public static func create(_ rootFD: Int32, _ path: String, kind: Kind, mode: mode_t = 0o755) throws(SystemError) -> Int32 {
        if let fd = try? open(rootFD, path) { return fd }
        let parts = path.split(separator: "/").map(String.init)
        var dir = try sys("dup rootfs fd") { fcntl(rootFD, F_DUPFD_CLOEXEC, 0) }
        var walked = ""
        for (i, name) in parts.enumerated() {
            let last = i == parts.count - 1
            walked += "/" + name
            if let next = try? open(rootFD, walked) {
                close(dir); dir = next; continue
            }
            // Create `name` in the directory we reached (resolved inside the root already).
            if last && kind == .file {
                let fd = openat(dir, name, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0o644)
                if fd < 0 && errno != EEXIST { let e = SystemError.last("create \(walked) inside the rootfs"); close(dir); throw e }
                if fd >= 0 { close(fd) }
            } else if mkdirat(dir, name, mode) != 0 && errno != EEXIST {
                let e = SystemError.last("mkdir \(walked) inside the rootfs"); close(dir); throw e
            }
            do {
                let next = try open(rootFD, walked)
                close(dir); dir = next
            } catch { close(dir); throw error }
        }
        return dir
    }

    public static func procPath(_ fd: Int32) -> String { "/proc/self/fd/\(fd)" }

    public static func isDirectory(fd: Int32) -> Bool {
        var st = stat()
        return fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }
}
