import BrigLinux
import CBrigShim
import Glibc

/// Protection against CVE-2019-5736 (a container overwriting the runtime binary through
/// /proc/<pid>/exe of a runtime process that entered it): `brig init` never runs from the
/// installed binary. It runs from a copy under `/run/brig/.exe/`, bind-mounted read-only onto
/// itself, so even a handle obtained through /proc/<pid>/exe can't be reopened for writing
/// (EROFS). The copy is made once per binary version (keyed by device, inode, size and mtime)
/// and shared by every state root, so the hot path pays one stat.
public enum SealedExecutable {
    public static let directory = "/run/brig/.exe"

    public static func path(dir: String = directory) -> String? {
        var st = stat()
        guard stat("/proc/self/exe", &st) == 0 else { return nil }
        let name = "brig-\(st.st_dev)-\(st.st_ino)-\(st.st_size)-\(st.st_mtim.tv_sec)"
        let target = dir + "/" + name
        if isReadOnlyMount(target) { return target }
        do {
            try Files.mkdirAll(dir, mode: 0o711)
            // Exclusive: concurrent creators serialize on a lock file.
            let lock = try Files.open(dir + "/.lock", O_RDWR | O_CREAT, mode: 0o600)
            defer { close(lock) }
            flock(lock, LOCK_EX)
            if isReadOnlyMount(target) { return target }
            let tmp = target + ".tmp"
            unlink(tmp)
            let src = try Files.open("/proc/self/exe", O_RDONLY)
            defer { close(src) }
            let dst = try Files.open(tmp, O_WRONLY | O_CREAT | O_EXCL, mode: 0o555)
            var off: Int = 0
            while off < Int(st.st_size) {
                let n = sendfile(dst, src, nil, Int(st.st_size) - off)
                if n <= 0 { close(dst); unlink(tmp); return nil }
                off += n
            }
            close(dst)
            guard rename(tmp, target) == 0,
                  brig_mount(target, target, nil, UInt(BRIG_MS_BIND), nil) == 0,
                  brig_mount(nil, target, nil, UInt(BRIG_MS_BIND | BRIG_MS_REMOUNT | BRIG_MS_RDONLY | BRIG_MS_NODEV | BRIG_MS_NOSUID), nil) == 0
            else { return nil }
            // Older copies (a previous brig version) are dropped.
            for old in (try? Files.list(dir)) ?? [] where old.hasPrefix("brig-") && old != name {
                _ = brig_umount2(dir + "/" + old, Int32(BRIG_MNT_DETACH))
                unlink(dir + "/" + old)
            }
            return target
        } catch { return nil }
    }

    static func isReadOnlyMount(_ path: String) -> Bool {
        var vfs = statvfs()
        return statvfs(path, &vfs) == 0 && (vfs.f_flag & UInt(ST_RDONLY)) != 0
    }
}
