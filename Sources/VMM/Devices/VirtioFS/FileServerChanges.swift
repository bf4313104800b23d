import CBrigShim
import Glibc

/// What the caller of a creating request is: its uid/gid in the guest kernel (already mapped
/// through the container's user namespace, if any), which become the host owner.
public struct FsCaller: Sendable, Equatable {
    public var uid: UInt32, gid: UInt32
    public init(uid: UInt32, gid: UInt32) { self.uid = uid; self.gid = gid }
}

/// Changes: everything here fails with EROFS on a read-only share (and on the synthetic root).
/// Names are single components created relative to the parent's fd. New objects get the mode
/// asked for (set explicitly, so the VMM's umask does not apply) minus set-uid (and set-gid on
/// anything but directories): the guest cannot plant a set-uid file on the host. They are owned
/// by the caller (the parent's group when it is set-gid).
extension FileServer {
    func writableNode(_ id: UInt64) throws(FsError) -> Node {
        if id == Fuse.rootID { throw FsError(EROFS) }
        let n = try node(id)
        if isReadOnly(n) { throw FsError(EROFS) }
        return n
    }

    static func safeMode(_ mode: UInt32, directory: Bool) -> mode_t {
        mode_t(mode) & (directory ? 0o3777 : 0o1777)
    }

    /// Owner and mode of a new object (`fd` is its O_PATH fd).
    func adopt(_ fd: Int32, parent: Node, caller: FsCaller, mode: mode_t?) {
        var gid = caller.gid
        if let p = try? Self.statFD(parent.fd), p.st_mode & S_ISGID != 0 { gid = p.st_gid }
        _ = fchownat(fd, "", caller.uid, gid, Self.atEmptyPath | AT_SYMLINK_NOFOLLOW)
        if let mode { _ = fchmodat(AT_FDCWD, Self.procPath(fd), mode, 0) }
    }

    /// A new child of `parent` as a node: opened again by name, confined, never followed.
    func newEntry(_ parent: Node, _ name: [UInt8], caller: FsCaller, mode: mode_t?) throws(FsError) -> (UInt64, stat) {
        let fd = try openBeneath(parent, name)
        adopt(fd, parent: parent, caller: caller, mode: mode)
        return try intern(fd, share: parent.share)
    }

    public func mkdir(parent: UInt64, name: [UInt8], mode: UInt32, caller: FsCaller) throws(FsError) -> (UInt64, stat) {
        let p = try writableNode(parent)
        try Self.checkName(name)
        let m = Self.safeMode(mode, directory: true)
        guard Self.withName(name, { mkdirat(p.fd, $0, m) }) == 0 else { throw FsError(errno) }
        return try newEntry(p, name, caller: caller, mode: m)
    }

    /// Regular files, FIFOs and sockets only: no device nodes.
    public func mknod(parent: UInt64, name: [UInt8], mode: UInt32, caller: FsCaller) throws(FsError) -> (UInt64, stat) {
        let p = try writableNode(parent)
        try Self.checkName(name)
        let kind = mode_t(mode) & S_IFMT
        guard kind == S_IFREG || kind == S_IFIFO || kind == S_IFSOCK else { throw FsError(EPERM) }
        let m = Self.safeMode(mode, directory: false)
        guard Self.withName(name, { mknodat(p.fd, $0, kind | m, 0) }) == 0 else { throw FsError(errno) }
        return try newEntry(p, name, caller: caller, mode: m)
    }

    public func symlink(parent: UInt64, name: [UInt8], target: [UInt8], caller: FsCaller) throws(FsError) -> (UInt64, stat) {
        let p = try writableNode(parent)
        try Self.checkName(name)
        guard !target.isEmpty, target.count < 4096, !target.contains(0) else { throw FsError(EINVAL) }
        let rc = Self.withName(target) { t in Self.withName(name) { symlinkat(t, p.fd, $0) } }
        guard rc == 0 else { throw FsError(errno) }
        return try newEntry(p, name, caller: caller, mode: nil)
    }

    public func link(node id: UInt64, parent: UInt64, name: [UInt8]) throws(FsError) -> (UInt64, stat) {
        let p = try writableNode(parent)
        let n = try writableNode(id)
        guard n.share == p.share else { throw FsError(EXDEV) }
        try Self.checkName(name)
        guard Self.withName(name, { linkat(n.fd, "", p.fd, $0, Self.atEmptyPath) }) == 0 else { throw FsError(errno) }
        return try intern(try openBeneath(p, name), share: p.share)
    }

    /// CREATE: a new regular file opened with `flags`; an existing one (no O_EXCL) is opened
    /// only if it is a regular file, through its node, never by following the name.
    public func create(parent: UInt64, name: [UInt8], flags: UInt32, mode: UInt32, caller: FsCaller) throws(FsError) -> (UInt64, stat, UInt64) {
        let p = try writableNode(parent)
        try Self.checkName(name)
        guard handles.count < limits.maxHandles else { throw FsError(EMFILE) }
        let f = Self.openFlags(flags)
        let m = Self.safeMode(mode, directory: false)
        var fd = Self.withName(name) { openat(p.fd, $0, f | O_CREAT | O_EXCL | O_NOFOLLOW, m) }
        let created = fd >= 0
        if !created {
            guard errno == EEXIST, Int32(bitPattern: flags) & O_EXCL == 0 else { throw FsError(errno) }
            let path = try openBeneath(p, name)
            defer { close(path) }
            fd = try reopen(path, flags: f, directory: false)
        }
        let pathFD = Glibc.open(Self.procPath(fd), Self.oPath | O_CLOEXEC)
        guard pathFD >= 0 else { let e = errno; close(fd); throw FsError(e) }
        if created { adopt(pathFD, parent: p, caller: caller, mode: m) }
        let (id, st): (UInt64, stat)
        do throws(FsError) { (id, st) = try intern(pathFD, share: p.share) } catch { close(fd); throw error }
        let fh = try addHandle(.file(fd: fd, node: id, writable: f & O_ACCMODE != O_RDONLY))
        return (id, st, fh)
    }

    public func unlink(parent: UInt64, name: [UInt8], directory: Bool) throws(FsError) {
        let p = try writableNode(parent)
        try Self.checkName(name)
        guard Self.withName(name, { unlinkat(p.fd, $0, directory ? AT_REMOVEDIR : 0) }) == 0 else { throw FsError(errno) }
    }

    /// RENAME/RENAME2 within one share (EXDEV across shares); NOREPLACE and EXCHANGE only.
    public func rename(parent: UInt64, name: [UInt8], newParent: UInt64, newName: [UInt8], flags: UInt32) throws(FsError) {
        let from = try writableNode(parent), to = try writableNode(newParent)
        guard from.share == to.share else { throw FsError(EXDEV) }
        guard flags & ~3 == 0 else { throw FsError(EINVAL) }
        try Self.checkName(name); try Self.checkName(newName)
        let rc = Self.withName(name) { a in Self.withName(newName) { b in brig_renameat2(from.fd, a, to.fd, b, flags) } }
        guard rc == 0 else { throw FsError(errno) }
    }

    public struct SetAttr: Sendable {
        public var valid: UInt32 = 0, fh: UInt64 = 0, size: UInt64 = 0
        public var atime: timespec = timespec(), mtime: timespec = timespec()
        public var mode: UInt32 = 0, uid: UInt32 = 0, gid: UInt32 = 0
        public init() {}
    }

    public func setattr(_ id: UInt64, _ a: SetAttr) throws(FsError) -> stat {
        let n = try writableNode(id)
        let st = try Self.statFD(n.fd)
        let kind = st.st_mode & S_IFMT
        let path = Self.procPath(n.fd)
        if a.valid & Fuse.fattrMode != 0, kind != S_IFLNK {
            guard fchmodat(AT_FDCWD, path, Self.safeMode(a.mode, directory: kind == S_IFDIR), 0) == 0 else { throw FsError(errno) }
        }
        if a.valid & (Fuse.fattrUID | Fuse.fattrGID) != 0 {
            let uid = a.valid & Fuse.fattrUID != 0 ? a.uid : UInt32.max
            let gid = a.valid & Fuse.fattrGID != 0 ? a.gid : UInt32.max
            guard fchownat(n.fd, "", uid, gid, Self.atEmptyPath | AT_SYMLINK_NOFOLLOW) == 0 else { throw FsError(errno) }
        }
        if a.valid & Fuse.fattrSize != 0 {
            guard kind == S_IFREG else { throw FsError(kind == S_IFDIR ? EISDIR : EINVAL) }
            guard a.size <= UInt64(Int64.max) else { throw FsError(EFBIG) }
            if a.valid & Fuse.fattrFH != 0, case let .file(fd, node, true)? = handles[a.fh], node == id {
                guard ftruncate(fd, off_t(a.size)) == 0 else { throw FsError(errno) }
            } else {
                let fd = try reopen(n.fd, flags: O_WRONLY | O_CLOEXEC | O_NONBLOCK, directory: false)
                defer { close(fd) }
                guard ftruncate(fd, off_t(a.size)) == 0 else { throw FsError(errno) }
            }
        }
        let timeBits = Fuse.fattrAtime | Fuse.fattrMtime | Fuse.fattrAtimeNow | Fuse.fattrMtimeNow
        if a.valid & timeBits != 0, kind != S_IFLNK {
            func spec(_ set: UInt32, _ now: UInt32, _ t: timespec) -> timespec {
                if a.valid & now != 0 { return timespec(tv_sec: 0, tv_nsec: Int((1 << 30) - 1)) } // UTIME_NOW
                if a.valid & set != 0 { return t }
                return timespec(tv_sec: 0, tv_nsec: Int((1 << 30) - 2)) // UTIME_OMIT
            }
            let times = [spec(Fuse.fattrAtime, Fuse.fattrAtimeNow, a.atime), spec(Fuse.fattrMtime, Fuse.fattrMtimeNow, a.mtime)]
            guard utimensat(AT_FDCWD, path, times, 0) == 0 else { throw FsError(errno) }
        }
        return try Self.statFD(n.fd)
    }
}
