import BrigLinux
import CBrigShim
import Glibc

/// Protection against CVE-2019-5736 (a container overwriting the runtime binary through
/// /proc/<pid>/exe of a runtime process that entered it): `brig init` never runs from the
/// installed binary. Each create/exec opens a private handle on this binary that can't be
/// written through and execs `/proc/self/fd/N`:
/// - a detached, read-only clone of the binary's mount (`open_tree(OPEN_TREE_CLONE)` +
///   `mount_setattr(MOUNT_ATTR_RDONLY)`): no copy, attached nowhere (so no mount table changes
///   and nothing to clean up), gone with its last reference — reopening /proc/<pid>/exe for
///   writing fails with EROFS; ~0.1 ms;
/// - without CAP_SYS_ADMIN (or before Linux 5.12), a sealed memfd copy (as runc >= 1.2 and crun):
///   writes fail with EPERM; costs a copy of the binary (~10-25 ms for 13-31 MB).
/// Nothing is shared between brig processes, state roots or brig versions, so no brig can
/// remove a copy another one needs, and a killed brig leaves nothing behind.
public enum SealedExecutable {
    public enum Method: String, Sendable { case detachedMount = "detached read-only mount", memfd = "sealed memfd copy" }

    /// An O_CLOEXEC fd of this binary that can't be written through, or nil (the caller then
    /// runs /proc/self/exe and says so). `method` forces one way (tests, benchmarks).
    public static func open(binary: String = "/proc/self/exe", method: Method? = nil) -> (fd: Int32, method: Method)? {
        if method != .memfd {
            let fd = brig_exe_detached_ro(binary)
            if fd >= 0 { return (fd, .detachedMount) }
            if method == .detachedMount { return nil }
        }
        let fd = brig_exe_memfd(binary)
        return fd >= 0 ? (fd, .memfd) : nil
    }

    /// The path `execve` takes for `fd` in a child that inherits it (O_CLOEXEC fds stay open
    /// until the exec itself).
    public static func execPath(_ fd: Int32) -> String { "/proc/self/fd/\(fd)" }
}
