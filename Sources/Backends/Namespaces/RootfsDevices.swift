import BrigLinux
import BrigOCI
import CBrigShim
import Glibc

/// Device nodes in the rootfs: `linux.devices` and the defaults (mknod, or a bind of the host's
/// node where mknod is not permitted), and /dev's standard symlinks.
extension RootfsSetup {
    func createDevice(_ d: LaunchPlan.PlannedDevice, rootFD: Int32) throws {
        let parentPath = String(d.path[..<(d.path.lastIndex(of: "/") ?? d.path.startIndex)])
        let name = String(d.path.split(separator: "/").last ?? "")
        let parent = try SecurePath.create(rootFD, parentPath.isEmpty ? "/" : parentPath, kind: .directory)
        defer { close(parent) }
        // openat on an O_PATH fd needs a real directory fd for mknodat/unlinkat.
        let dir = try sys("open \(parentPath)") { openat(parent, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        defer { close(dir) }
        unlinkat(dir, name, 0)
        let typeBits: mode_t = d.type == "b" ? S_IFBLK : d.type == "p" ? S_IFIFO : S_IFCHR
        let mode = typeBits | (mode_t(d.mode) & 0o7777)
        if brig_mknodat(dir, name, mode, UInt32(truncatingIfNeeded: d.major), UInt32(truncatingIfNeeded: d.minor)) != 0 {
            guard errno == EPERM, d.type != "p" else { throw SystemError.last("mknod \(d.path)") }
            // In a user namespace mknod is not allowed: bind the host's device instead.
            let fd = openat(dir, name, O_CREAT | O_WRONLY | O_CLOEXEC, 0o600)
            if fd >= 0 { close(fd) }
            let target = try SecurePath.open(rootFD, d.path)
            defer { close(target) }
            try mount(d.path, SecurePath.procPath(target), nil, Self.MS.bind, nil, what: "bind device \(d.path)")
            return
        }
        _ = fchmodat(dir, name, mode_t(d.mode) & 0o7777, 0)
        _ = fchownat(dir, name, d.uid, d.gid, Int32(AT_SYMLINK_NOFOLLOW))
    }

    func createDevSymlinks(rootFD: Int32) throws {
        let dev = try SecurePath.open(rootFD, "/dev")
        defer { close(dev) }
        let dir = try sys("open /dev") { openat(dev, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        defer { close(dir) }
        var links = [("/proc/self/fd", "fd"), ("/proc/self/fd/0", "stdin"), ("/proc/self/fd/1", "stdout"),
                     ("/proc/self/fd/2", "stderr")]
        if Files.exists("/proc/kcore") { links.append(("/proc/kcore", "core")) }
        for (target, name) in links {
            if symlinkat(target, dir, name) != 0 && errno != EEXIST { throw SystemError.last("symlink /dev/\(name)") }
        }
        if plan.mounts.contains(where: { $0.destination == "/dev/pts" }) {
            unlinkat(dir, "ptmx", 0)
            try sys("symlink /dev/ptmx") { symlinkat("pts/ptmx", dir, "ptmx") }
        }
    }
}
