import BrigLinux
import BrigOCI
import CBrigShim
import Glibc

/// Rootfs preparation inside the container's mount namespace. Every mount destination is
/// resolved inside the rootfs with openat2(RESOLVE_IN_ROOT) and mounted onto the resolved fd
/// through /proc/self/fd, so symlinks in the bundle can't send a mount outside the rootfs.
struct RootfsSetup {
    let plan: LaunchPlan
    /// Detached trees of host-opened bind sources, by mount index (see openHostSources).
    var bindSources: [Int: Int32] = [:]

    static let MS = (bind: UInt(BRIG_MS_BIND), rec: UInt(BRIG_MS_REC), remount: UInt(BRIG_MS_REMOUNT),
                     rdonly: UInt(BRIG_MS_RDONLY), nosuid: UInt(BRIG_MS_NOSUID), nodev: UInt(BRIG_MS_NODEV),
                     noexec: UInt(BRIG_MS_NOEXEC), slave: UInt(BRIG_MS_SLAVE), priv: UInt(BRIG_MS_PRIVATE),
                     move: UInt(BRIG_MS_MOVE))

    func mount(_ source: String?, _ target: String, _ type: String?, _ flags: UInt, _ data: String?, what: @autoclosure () -> String) throws {
        try sys(what()) { brig_mount(source, target, type, flags, data) }
    }

    /// Propagation, rootfs bind, the config's mounts, devices and /dev symlinks.
    func prepare() throws {
        let MS = Self.MS
        try mount(nil, "/", nil, plan.rootPropagation, nil, what: "set propagation of /")
        try makeParentMountPrivate()
        try mount(plan.rootfs, plan.rootfs, "bind", MS.bind | MS.rec, nil, what: "bind mount rootfs \(plan.rootfs)")
        let rootFD = try SecurePath.openRoot(plan.rootfs)
        defer { close(rootFD) }
        for (i, m) in plan.mounts.enumerated() {
            do { try mountOne(m, rootFD: rootFD, tree: bindSources[i]) } catch {
                throw InitError("mount \(m.source.isEmpty ? m.type : m.source) on \(m.destination): \(error)")
            }
        }
        // As runc: devices and /dev symlinks unless /dev is bind-mounted from the host.
        let devBound = plan.mounts.contains { $0.destination == "/dev" && $0.kind == .bind }
        if !devBound {
            for d in plan.devices { try createDevice(d, rootFD: rootFD) }
            try createDevSymlinks(rootFD: rootFD)
        }
        // cwd is created inside the rootfs if missing, as runc does.
        close(try SecurePath.create(rootFD, plan.process.cwd, kind: .directory))
    }

    /// As runc: tmpfs mounts and /dev are mounted writable (files get created in them) and made
    /// read-only by finish().
    static func delaysReadonly(_ m: LaunchPlan.PlannedMount) -> Bool {
        m.kind == .regular && (m.type == "tmpfs" || m.destination == "/dev")
    }

    /// Runs in stage 1, still the host's root in the host's namespaces: clones each source of
    /// `plan.hostOpenedBinds` into a detached mount with the bind's flags and the propagation a
    /// bind inside the container would have; stage 2 attaches a clone only where the container's
    /// root can't reach the source itself. A source that can't be cloned (an unprivileged
    /// caller, an old kernel, a missing path) is left to the bind by path and its error.
    static func openHostSources(_ plan: LaunchPlan) -> [Int: Int32] {
        var trees: [Int: Int32] = [:]
        for i in plan.hostOpenedBinds {
            let m = plan.mounts[i]
            let attrs = m.options.mountAttributes
            let fd = brig_detached_bind(m.source, m.options.recursive ? 1 : 0, attrs.set, attrs.clear, plan.detachedPropagation)
            if fd >= 0 { trees[i] = fd }
        }
        return trees
    }

    func mountOne(_ m: LaunchPlan.PlannedMount, rootFD: Int32, tree: Int32? = nil) throws {
        let MS = Self.MS
        var settable = m.options.flags & ~MS.remount
        switch m.kind {
        case .bind:
            var st = stat()
            // A source the container's root can reach is bound by path, as without the host's
            // clone: the bind keeps the flags the kernel locks on the host's mounts. The clone
            // (see openHostSources) is for sources it can't reach.
            let failure = stat(m.source, &st) == 0 ? 0 : errno
            if failure == EACCES || failure == EPERM, let tree {
                try attach(tree, m, rootFD: rootFD)
                break
            }
            if let tree { close(tree) }
            if failure != 0 { throw SystemError(errno: failure, "stat bind source \(m.source)") }
            let isDir = (st.st_mode & S_IFMT) == S_IFDIR
            let target = try SecurePath.create(rootFD, m.destination, kind: isDir ? .directory : .file)
            defer { close(target) }
            try mount(m.source, SecurePath.procPath(target), nil, MS.bind | (m.options.recursive ? MS.rec : 0), nil,
                      what: "bind mount")
            if settable != 0 {
                let top = try SecurePath.open(rootFD, m.destination)
                defer { close(top) }
                try remount(SecurePath.procPath(top), flags: settable | MS.bind)
            }
        case .cgroup:
            try mountCgroup(m, rootFD: rootFD)
        case .regular:
            if m.type == "proc" || m.type == "sysfs" { try requireOrdinaryDirectory(m, rootFD: rootFD) }
            if Self.delaysReadonly(m) { settable &= ~MS.rdonly }
            let target = try SecurePath.create(rootFD, m.destination, kind: .directory)
            defer { close(target) }
            // A tmpfs without mode= takes the mode of the directory it covers (runc).
            var dirStat = stat()
            let keepMode = m.type == "tmpfs" && !m.options.data.contains { $0.hasPrefix("mode=") }
                && fstat(target, &dirStat) == 0
            // tmpcopyup: keep a handle on the directory's old contents before covering them.
            let below = m.options.tmpcopyup ? openat(target, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1
            defer { if below >= 0 { close(below) } }
            do {
                try mount(m.source.isEmpty ? m.type : m.source, SecurePath.procPath(target), m.type, settable,
                          m.options.dataString, what: "mount \(m.type)")
            } catch let e as SystemError where e.errno == EPERM {
                guard let host = plan.hostInstance(for: m, hostMounts: (try? MountInfo.current()) ?? []) else { throw e }
                try bindHostInstance(host, m, target: target, rootFD: rootFD)
            }
            if below >= 0 || keepMode {
                let top = try SecurePath.open(rootFD, m.destination, flags: O_RDONLY | O_DIRECTORY)
                defer { close(top) }
                if keepMode { try sys("chmod tmpfs \(m.destination)") { fchmod(top, dirStat.st_mode & 0o7777) } }
                if below >= 0 { try copyTree(from: below, to: top) }
            }
        }
        if m.options.recursiveSet != 0 || m.options.recursiveClear != 0 {
            let top = try SecurePath.open(rootFD, m.destination)
            defer { close(top) }
            try sys("mount_setattr (recursive options) on \(m.destination)") {
                brig_mount_setattr_recursive(SecurePath.procPath(top), m.options.recursiveSet, m.options.recursiveClear)
            }
        }
        for p in m.options.propagation {
            let top = try SecurePath.open(rootFD, m.destination)
            defer { close(top) }
            try mount(nil, SecurePath.procPath(top), nil, p, nil, what: "set propagation")
        }
    }

    /// A host-opened bind source (flags already set on the detached tree) attached at its
    /// destination, walked inside the rootfs; the tree's fd is closed.
    func attach(_ tree: Int32, _ m: LaunchPlan.PlannedMount, rootFD: Int32) throws {
        defer { close(tree) }
        var st = stat()
        try sys("stat bind source \(m.source)") { fstat(tree, &st) }
        let target = try SecurePath.create(rootFD, m.destination, kind: (st.st_mode & S_IFMT) == S_IFDIR ? .directory : .file)
        defer { close(target) }
        try sys("attach bind source \(m.source) (move_mount)") { brig_move_mount_fd(tree, target) }
    }

    /// The host's sysfs or mqueue bound where a new instance was refused (see
    /// LaunchPlan.hostInstance): the whole tree, with the mount's flags on every mount in it.
    func bindHostInstance(_ host: String, _ m: LaunchPlan.PlannedMount, target: Int32, rootFD: Int32) throws {
        try mount(host, SecurePath.procPath(target), nil, Self.MS.bind | Self.MS.rec, nil, what: "bind the host's \(host) (a new \(m.type) is refused)")
        let top = try SecurePath.open(rootFD, m.destination)
        defer { close(top) }
        let attrs = m.options.mountAttributes
        try sys("mount_setattr (options) on \(m.destination)") {
            brig_mount_setattr_recursive(SecurePath.procPath(top), attrs.set, attrs.clear)
        }
    }

    /// runc refuses proc and sysfs on anything but a real directory: a symlink there would send
    /// the mount elsewhere in the rootfs.
    func requireOrdinaryDirectory(_ m: LaunchPlan.PlannedMount, rootFD: Int32) throws {
        let dest = m.destination.hasPrefix("/") ? m.destination : "/" + m.destination
        let cut = dest.lastIndex(of: "/")!
        let parentPath = String(dest[..<cut]), name = String(dest[dest.index(after: cut)...])
        guard !name.isEmpty else { return }
        let parent: Int32
        do { parent = try SecurePath.open(rootFD, parentPath.isEmpty ? "/" : parentPath) } catch {
            if error.errno == ENOENT { return }
            throw error
        }
        defer { close(parent) }
        var st = stat()
        if fstatat(parent, name, &st, Int32(AT_SYMLINK_NOFOLLOW)) != 0 {
            if errno == ENOENT { return }
            throw SystemError.last("stat \(m.destination) inside the rootfs")
        }
        if (st.st_mode & S_IFMT) != S_IFDIR {
            throw InitError("filesystem \"\(m.type)\" must be mounted on ordinary directory (\(m.destination) is not one)")
        }
    }

    /// Copies a directory's entries (files, directories, symlinks; mode and owner) between two
    /// directory fds, never following symlinks.
    func copyTree(from src: Int32, to dst: Int32) throws {
        let dup = try sys("dup") { fcntl(src, F_DUPFD_CLOEXEC, 0) }
        guard let dir = fdopendir(dup) else { close(dup); throw SystemError.last("read directory for tmpcopyup") }
        defer { closedir(dir) }
        while let e = readdir(dir) {
            let name = withUnsafePointer(to: e.pointee.d_name) { $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) } }
            if name == "." || name == ".." { continue }
            var st = stat()
            try sys("stat \(name)") { fstatat(src, name, &st, Int32(AT_SYMLINK_NOFOLLOW)) }
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                if mkdirat(dst, name, st.st_mode & 0o7777) != 0 && errno != EEXIST { throw SystemError.last("tmpcopyup mkdir \(name)") }
                let s2 = try sys("open \(name)") { openat(src, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
                defer { close(s2) }
                let d2 = try sys("open \(name)") { openat(dst, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
                defer { close(d2) }
                try copyTree(from: s2, to: d2)
            case S_IFLNK:
                var buf = [CChar](repeating: 0, count: 4097)
                let n = readlinkat(src, name, &buf, 4096)
                if n >= 0 { buf[n] = 0; _ = symlinkat(buf, dst, name) }
            case S_IFREG:
                let i = try sys("open \(name)") { openat(src, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) }
                defer { close(i) }
                let o = try sys("create \(name)") { openat(dst, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, st.st_mode & 0o7777) }
                defer { close(o) }
                var left = Int(st.st_size)
                while left > 0 { let n = sendfile(o, i, nil, left); if n <= 0 { break }; left -= n }
            default:
                continue
            }
            _ = fchownat(dst, name, st.st_uid, st.st_gid, Int32(AT_SYMLINK_NOFOLLOW))
        }
    }

    /// Remounts with `flags`, keeping flags the kernel locks in a user namespace.
    func remount(_ path: String, flags: UInt) throws {
        let MS = Self.MS
        if brig_mount(nil, path, nil, flags | MS.remount, nil) == 0 { return }
        guard errno == EPERM else { throw SystemError.last("remount \(path)") }
        var vfs = statvfs()
        try sys("statvfs \(path)") { statvfs(path, &vfs) }
        let locked = UInt(vfs.f_flag) & (MS.rdonly | MS.nosuid | MS.nodev | MS.noexec | 1024 | 2048 | (1 << 21))
        try mount(nil, path, nil, flags | MS.remount | locked, nil, what: "remount \(path)")
    }

    /// pivot_root refuses a new root whose parent mount is shared, and the rootfs bind would
    /// propagate out of the container's namespace: make the mount the rootfs is on private
    /// (runc's rootfsParentMountPrivate) — `rootfsPropagation: shared` makes it shared above.
    func makeParentMountPrivate() throws {
        let mounts = (try? MountInfo.current()) ?? []
        guard let parent = MountInfo.containing(plan.rootfs, in: mounts), parent.isShared else { return }
        try mount(nil, parent.mountPoint, nil, Self.MS.priv, nil, what: "make \(parent.mountPoint) private")
    }

    /// `cgroup` mounts: cgroup2 on a unified host; otherwise a tmpfs with one directory per
    /// hierarchy. With a private cgroup namespace each is a fresh cgroup mount (showing the
    /// container's cgroup as root); without one, the container's own directories are bound.
    func mountCgroup(_ m: LaunchPlan.PlannedMount, rootFD: Int32) throws {
        let MS = Self.MS
        let flags = m.options.flags & ~MS.remount
        let privateNS = plan.has(.cgroup)
        let hierarchies = plan.cgroupHierarchies
        let target = try SecurePath.create(rootFD, m.destination, kind: .directory)
        defer { close(target) }
        if hierarchies.count == 1, let h = hierarchies.first, h.version == 2 {
            if privateNS {
                try mount("cgroup2", SecurePath.procPath(target), "cgroup2", flags, nil, what: "mount cgroup2")
            } else {
                // The container's own cgroup (runc emulates a cgroup namespace the same way);
                // remounted through a fresh handle: `target` is the directory under the bind.
                try mount(h.containerDir, SecurePath.procPath(target), nil, MS.bind, nil, what: "bind cgroup")
                if flags != 0 {
                    let top = try SecurePath.open(rootFD, m.destination)
                    defer { close(top) }
                    try remount(SecurePath.procPath(top), flags: flags | MS.bind)
                }
            }
            return
        }
        try mount("tmpfs", SecurePath.procPath(target), "tmpfs", MS.nosuid | MS.nodev | MS.noexec, "mode=755",
                  what: "mount tmpfs for cgroups")
        for h in hierarchies {
            let name = String(h.mountpoint.split(separator: "/").last ?? "")
            guard !name.isEmpty else { continue }
            let sub = try SecurePath.create(rootFD, m.destination + "/" + name, kind: .directory)
            defer { close(sub) }
            let p = SecurePath.procPath(sub)
            if privateNS {
                if h.version == 2 {
                    try mount("cgroup2", p, "cgroup2", flags, nil, what: "mount cgroup2 at \(name)")
                } else {
                    try mount("cgroup", p, "cgroup", flags, h.options, what: "mount cgroup \(h.options)")
                }
            } else {
                try mount(h.containerDir, p, nil, MS.bind, nil, what: "bind cgroup \(name)")
                if flags != 0 {
                    let top = try SecurePath.open(rootFD, m.destination + "/" + name)
                    defer { close(top) }
                    try remount(SecurePath.procPath(top), flags: flags | MS.bind)
                }
            }
        }
        if flags & MS.rdonly != 0 {
            let top = try SecurePath.open(rootFD, m.destination)
            defer { close(top) }
            try remount(SecurePath.procPath(top), flags: MS.rdonly | MS.nosuid | MS.nodev | MS.noexec)
        }
    }

    /// pivot_root into the rootfs (or MS_MOVE + chroot with --no-pivot, or chroot without a
    /// mount namespace).
    func enterRoot() throws {
        if !plan.has(.mount) {
            try sys("chroot \(plan.rootfs)") { chroot(plan.rootfs) }
            try sys("chdir /") { chdir("/") }
            return
        }
        if plan.noPivot {
            try sys("chdir \(plan.rootfs)") { chdir(plan.rootfs) }
            try mount(plan.rootfs, "/", nil, Self.MS.move, nil, what: "move rootfs to /")
            try sys("chroot") { chroot(".") }
            try sys("chdir /") { chdir("/") }
            return
        }
        let oldRoot = try Files.open("/", O_RDONLY | O_DIRECTORY)
        defer { close(oldRoot) }
        let newRoot = try Files.open(plan.rootfs, O_RDONLY | O_DIRECTORY)
        defer { close(newRoot) }
        try sys("fchdir rootfs") { fchdir(newRoot) }
        try sys("pivot_root \(plan.rootfs)") { brig_pivot_root(".", ".") }
        try sys("fchdir old root") { fchdir(oldRoot) }
        try mount(nil, ".", nil, Self.MS.slave | Self.MS.rec, nil, what: "make old root rslave")
        try sys("unmount old root") { brig_umount2(".", Int32(BRIG_MNT_DETACH)) }
        try sys("chdir /") { chdir("/") }
    }

    /// After pivot_root: masked and read-only paths, sysctls, read-only root.
    func finish() throws {
        let root = try SecurePath.openRoot("/")
        defer { close(root) }
        // runc's order: sysctls while /proc/sys is still writable, then read-only, then masked.
        for (key, value) in plan.sysctl.sorted(by: { $0.key < $1.key }) {
            let file = "/proc/sys/" + key.split(separator: ".").joined(separator: "/")
            do { try Files.write(file, value) } catch { throw InitError("linux.sysctl.\(key): \(error)") }
        }
        for m in plan.mounts where Self.delaysReadonly(m) && m.options.readonly {
            let fd = try SecurePath.open(root, m.destination)
            defer { close(fd) }
            try remount(target(fd, m.destination), flags: Self.MS.bind | Self.MS.rdonly | (m.options.flags & ~Self.MS.remount))
        }
        for path in plan.readonlyPaths { try readonly(path, root: root) }
        for path in plan.maskedPaths { try mask(path, root: root) }
        if plan.readonlyRoot {
            try remount("/", flags: Self.MS.bind | Self.MS.rdonly)
        }
    }

    /// After pivot_root, /proc/self/fd exists only if the container mounted proc.
    func target(_ fd: Int32, _ path: String) -> String {
        Files.exists("/proc/self/fd") ? SecurePath.procPath(fd) : path
    }

    func mask(_ path: String, root: Int32) throws {
        let fd: Int32
        do { fd = try SecurePath.open(root, path) } catch { if error.errno == ENOENT { return }; throw error }
        defer { close(fd) }
        let target = target(fd, path)
        if SecurePath.isDirectory(fd: fd) {
            try mount("tmpfs", target, "tmpfs", Self.MS.rdonly, nil, what: "mask \(path)")
        } else {
            // The source must really be the null device (CVE-2025-31133: a /dev/null swapped for a
            // symlink or another file would otherwise be bound over the path, unmasking it).
            let null = try Files.open("/dev/null", Int32(BRIG_O_PATH) | O_NOFOLLOW)
            defer { close(null) }
            var st = stat()
            guard fstat(null, &st) == 0, (st.st_mode & S_IFMT) == S_IFCHR, brig_major(UInt64(st.st_rdev)) == 1,
                  brig_minor(UInt64(st.st_rdev)) == 3 else {
                throw InitError("linux.maskedPaths: /dev/null in the container is not the null device; refusing to mask \(path) with it")
            }
            try mount(self.target(null, "/dev/null"), target, nil, Self.MS.bind, nil, what: "mask \(path)")
        }
    }

    func readonly(_ path: String, root: Int32) throws {
        let fd: Int32
        do { fd = try SecurePath.open(root, path) } catch { if error.errno == ENOENT { return }; throw error }
        defer { close(fd) }
        try mount(target(fd, path), target(fd, path), nil, Self.MS.bind | Self.MS.rec, nil,
                  what: "bind \(path) read-only")
        let top = try SecurePath.open(root, path)
        defer { close(top) }
        try remount(target(top, path), flags: Self.MS.bind | Self.MS.rdonly | Self.MS.rec)
    }
}
