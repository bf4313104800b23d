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

    /// Opens `path` inside the root, creating missing components: directories, and the last one
    /// as `kind`. The walk is anchored to fds: each component is opened with O_NOFOLLOW relative
    /// to its parent, and symlinks (dangling ones too) are expanded by hand inside the root, so
    /// what gets created is always below the root. Returns an O_PATH fd.
    public static func create(_ rootFD: Int32, _ path: String, kind: Kind, mode: mode_t = 0o755) throws(SystemError) -> Int32 {
        var pending = path.split(separator: "/").map(String.init)
        var current = try sys("dup rootfs fd") { fcntl(rootFD, F_DUPFD_CLOEXEC, 0) }
        var walked: [String] = []
        var links = 0
        let opath = Int32(BRIG_O_PATH) | O_NOFOLLOW | O_CLOEXEC
        func fail(_ what: String) -> SystemError {
            let e = SystemError.last("\(what) \("/" + walked.joined(separator: "/")) inside the rootfs")
            close(current)
            return e
        }
        while !pending.isEmpty {
            let name = pending.removeFirst()
            if name == "." || name.isEmpty { continue }
            if name == ".." {
                if !walked.isEmpty { walked.removeLast() }
                let up = try open(rootFD, "/" + walked.joined(separator: "/"))
                close(current); current = up
                continue
            }
            var fd = openat(current, name, opath)
            if fd < 0 && errno == ENOENT {
                if pending.isEmpty && kind == .file {
                    let f = openat(current, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0o644)
                    if f < 0 && errno != EEXIST { walked.append(name); throw fail("create") }
                    if f >= 0 { close(f) }
                } else if mkdirat(current, name, mode) != 0 && errno != EEXIST {
                    walked.append(name); throw fail("mkdir")
                }
                fd = openat(current, name, opath)
            }
            if fd < 0 { walked.append(name); throw fail("open") }
            var st = stat()
            if fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFLNK {
                links += 1
                var buf = [CChar](repeating: 0, count: 4097)
                let n = readlinkat(fd, "", &buf, 4096)
                close(fd)
                if links > 40 || n < 0 { errno = links > 40 ? ELOOP : errno; walked.append(name); throw fail("resolve symlink") }
                let target = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if target.hasPrefix("/") {
                    walked = []
                    let top = try sys("dup rootfs fd") { fcntl(rootFD, F_DUPFD_CLOEXEC, 0) }
                    close(current); current = top
                }
                pending = target.split(separator: "/").map(String.init) + pending
                continue
            }
            walked.append(name)
            close(current); current = fd
        }
        return current
    }

    public static func procPath(_ fd: Int32) -> String { "/proc/self/fd/\(fd)" }

    public static func isDirectory(fd: Int32) -> Bool {
        var st = stat()
        return fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }
}
