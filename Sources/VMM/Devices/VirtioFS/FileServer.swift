import BrigLinux
import CBrigShim
import Glibc

/// One host path shared with the guest: a directory, or a single regular file (an `/etc/hosts`
/// bind). `readOnly` is enforced here, on the host, whatever the guest's mount says.
public struct FSShare: Sendable, Equatable, Codable {
    public var source: String
    public var readOnly: Bool
    /// false (a `bind` that is not `rbind`): mounts below the source are not shared; the share is
    /// a detached non-recursive clone of the source's mount (open_tree), so the guest sees the
    /// directories under them, as a non-recursive bind shows them. Without the privilege to
    /// clone (CAP_SYS_ADMIN) the source is shared with its submounts.
    public var recursive: Bool
    public init(source: String, readOnly: Bool, recursive: Bool = true) {
        self.source = source; self.readOnly = readOnly; self.recursive = recursive
    }
}

public struct FileServerLimits: Sendable {
    /// Host objects the guest holds a reference to (one O_PATH fd each).
    public var maxNodes = 65536
    /// Open files and directories.
    public var maxHandles = 1024
    /// Largest READ/WRITE payload (FUSE max_write, 256 pages).
    public var maxIO = 1 << 20
    public init() {}
}

/// A FUSE error: the errno the guest gets.
public struct FsError: Error, Equatable { public var errno: Int32; public init(_ e: Int32) { errno = e } }

/// The file server behind brig's virtio-fs device. Node 1 is a synthetic read-only directory
/// whose entries `0`, `1`, … are the shares (a directory, or the shared file itself). Every other
/// node is an O_PATH fd of a host object inside one share, reached only by one-component lookups
/// relative to its parent's fd (`openat2` with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
/// RESOLVE_NO_MAGICLINKS and O_NOFOLLOW; names with `/`, `.` and `..` are refused), so no symlink,
/// `..` chain or rename can take a lookup outside the share: symlinks are returned to the guest
/// as symlinks and resolved by the guest kernel, inside the guest. Only regular files and
/// directories are ever opened (device nodes, FIFOs and sockets get EACCES; their type is checked
/// on the node's own fd, so it cannot be swapped), by reopening the node through
/// `/proc/self/fd/N`. Not thread-safe: the device serialises requests.
public final class FileServer {
    struct NodeKey: Hashable { var share: Int; var dev: UInt64; var ino: UInt64 }
    struct Node { var fd: Int32; var share: Int; var key: NodeKey; var lookups: UInt64 }
    enum Handle {
        case file(fd: Int32, node: UInt64, writable: Bool)
        case dir(OpaquePointer, node: UInt64)
        case root
    }
    struct Share { var fd: Int32; var readOnly: Bool; var isDirectory: Bool }

    static let oPath = Int32(BRIG_O_PATH), atEmptyPath: Int32 = 0x1000
    static let resolve = UInt64(BRIG_RESOLVE_BENEATH | BRIG_RESOLVE_NO_SYMLINKS | BRIG_RESOLVE_NO_MAGICLINKS)
    /// Entry and attribute cache lifetime given to the guest (seconds): host changes show up soon.
    static let validSeconds: UInt64 = 1

    let shares: [Share]
    public let limits: FileServerLimits
    var nodes: [UInt64: Node] = [:]
    var byKey: [NodeKey: UInt64] = [:]
    var nextNode: UInt64 = 2
    var handles: [UInt64: Handle] = [:]
    var nextHandle: UInt64 = 1

    /// Opens every share's source (following symlinks in the host path, as a bind mount does).
    /// A source that is neither a directory nor a regular file is refused.
    public init(shares: [FSShare], limits: FileServerLimits = FileServerLimits()) throws(SystemError) {
        var opened: [Share] = []
        for s in shares {
            var fd: Int32 = s.recursive ? -1 : brig_open_tree_clone(s.source, 0)
            if fd < 0 { fd = Glibc.open(s.source, Self.oPath | O_CLOEXEC) }
            guard fd >= 0 else {
                let e = SystemError.last("virtio-fs share \(s.source)")
                for o in opened { close(o.fd) }
                throw e
            }
            var st = stat()
            let kind = fstat(fd, &st) == 0 ? st.st_mode & S_IFMT : 0
            guard kind == S_IFDIR || kind == S_IFREG else {
                close(fd); for o in opened { close(o.fd) }
                throw SystemError(errno: EINVAL, "virtio-fs share \(s.source) is neither a directory nor a regular file")
            }
            opened.append(Share(fd: fd, readOnly: s.readOnly, isDirectory: kind == S_IFDIR))
        }
        self.shares = opened
        self.limits = limits
    }

    deinit {
        reset()
        for s in shares { close(s.fd) }
    }

    /// Forgets every node and closes every handle (FUSE_DESTROY, a new FUSE_INIT).
    public func reset() {
        for (_, h) in handles { closeHandle(h) }
        for (_, n) in nodes { close(n.fd) }
        handles = [:]; nodes = [:]; byKey = [:]
    }

    public var nodeCount: Int { nodes.count }
    public var handleCount: Int { handles.count }

    // MARK: nodes

    static func procPath(_ fd: Int32) -> String { "/proc/self/fd/\(fd)" }

    static func statFD(_ fd: Int32) throws(FsError) -> stat {
        var st = stat()
        guard fstatat(fd, "", &st, atEmptyPath | AT_SYMLINK_NOFOLLOW) == 0 else { throw FsError(errno) }
        return st
    }

    /// A directory entry name: one component, never `.`/`..`, at most NAME_MAX bytes.
    static func checkName(_ name: [UInt8]) throws(FsError) {
        guard !name.isEmpty, name.count <= 255 else { throw FsError(name.isEmpty ? EINVAL : ENAMETOOLONG) }
        guard !name.contains(UInt8(ascii: "/")), !name.contains(0), name != [46], name != [46, 46] else { throw FsError(EINVAL) }
    }

    static func withName<T>(_ name: [UInt8], _ body: (UnsafePointer<CChar>) -> T) -> T {
        (name + [0]).withUnsafeBufferPointer { $0.withMemoryRebound(to: CChar.self) { body($0.baseAddress!) } }
    }

    func node(_ id: UInt64) throws(FsError) -> Node {
        guard let n = nodes[id] else { throw FsError(id == Fuse.rootID ? EPERM : ESTALE) }
        return n
    }

    func isReadOnly(_ n: Node) -> Bool { shares[n.share].readOnly }

    /// Takes ownership of `fd` (an O_PATH fd inside `share`): the existing node for the same host
    /// object gets one more lookup, or a new node is made (ENFILE past the limit).
    func intern(_ fd: Int32, share: Int) throws(FsError) -> (UInt64, stat) {
        let st: stat
        do { st = try Self.statFD(fd) } catch { close(fd); throw error }
        let key = NodeKey(share: share, dev: UInt64(st.st_dev), ino: UInt64(st.st_ino))
        if let id = byKey[key] {
            close(fd)
            nodes[id]?.lookups += 1
            return (id, st)
        }
        guard nodes.count < limits.maxNodes else { close(fd); throw FsError(ENFILE) }
        let id = nextNode
        nextNode += 1
        nodes[id] = Node(fd: fd, share: share, key: key, lookups: 1)
        byKey[key] = id
        return (id, st)
    }

    /// Opens `name` in directory node `parent` as O_PATH, confined to the parent (see the type).
    func openBeneath(_ parent: Node, _ name: [UInt8], extra: Int32 = 0) throws(FsError) -> Int32 {
        try Self.checkName(name)
        let fd = Self.withName(name) { brig_openat2(parent.fd, $0, Self.oPath | O_NOFOLLOW | O_CLOEXEC | extra, 0, Self.resolve) }
        guard fd >= 0 else { throw FsError(errno) }
        return fd
    }

    public func lookup(parent: UInt64, name: [UInt8]) throws(FsError) -> (UInt64, stat) {
        if parent == Fuse.rootID {
            guard let s = String(validating: name, as: UTF8.self), let i = Int(s), String(i) == s, shares.indices.contains(i) else {
                throw FsError(ENOENT)
            }
            let fd = fcntl(shares[i].fd, F_DUPFD_CLOEXEC, 0)
            guard fd >= 0 else { throw FsError(errno) }
            return try intern(fd, share: i)
        }
        let p = try node(parent)
        return try intern(try openBeneath(p, name), share: p.share)
    }

    public func forget(_ id: UInt64, count: UInt64) {
        guard var n = nodes[id] else { return }
        n.lookups = n.lookups > count ? n.lookups - count : 0
        if n.lookups > 0 { nodes[id] = n; return }
        close(n.fd)
        nodes[id] = nil
        byKey[n.key] = nil
    }

    /// The synthetic root's attributes: a read-only directory owned by root.
    var rootStat: stat {
        var st = stat()
        st.st_ino = 1; st.st_mode = S_IFDIR | 0o555; st.st_nlink = 2; st.st_blksize = 4096
        return st
    }

    public func getattr(_ id: UInt64) throws(FsError) -> stat {
        if id == Fuse.rootID { return rootStat }
        return try Self.statFD(try node(id).fd)
    }

    public func readlink(_ id: UInt64) throws(FsError) -> [UInt8] {
        let n = try node(id)
        var buf = [UInt8](repeating: 0, count: 4096)
        let len = buf.withUnsafeMutableBytes { readlinkat(n.fd, "", $0.baseAddress!.assumingMemoryBound(to: CChar.self), $0.count) }
        guard len >= 0 else { throw FsError(errno) }
        return Array(buf[0..<len])
    }

    public func statfs(_ id: UInt64) throws(FsError) -> statvfs {
        let fd = id == Fuse.rootID ? (shares.first?.fd ?? -1) : try node(id).fd
        var s = statvfs()
        if fd >= 0 { guard fstatvfs(fd, &s) == 0 else { throw FsError(errno) } }
        return s
    }

    // MARK: handles

    func addHandle(_ h: Handle) throws(FsError) -> UInt64 {
        guard handles.count < limits.maxHandles else { closeHandle(h); throw FsError(EMFILE) }
        let fh = nextHandle
        nextHandle += 1
        handles[fh] = h
        return fh
    }

    func closeHandle(_ h: Handle) {
        switch h {
        case let .file(fd, _, _): close(fd)
        case let .dir(d, _): closedir(d)
        case .root: break
        }
    }

    public func release(_ fh: UInt64) {
        if let h = handles.removeValue(forKey: fh) { closeHandle(h) }
    }

    /// Open flags the guest may pass through; everything else (O_CREAT, O_PATH, O_DIRECT, …) is
    /// dropped, and the reopen never follows a symlink or blocks.
    static func openFlags(_ f: UInt32) -> Int32 {
        Int32(bitPattern: f) & (O_ACCMODE | O_APPEND | O_SYNC | O_DSYNC | O_TRUNC) | O_CLOEXEC | O_NOCTTY | O_NONBLOCK
    }

    /// Reopens an O_PATH node for I/O; only regular files (and, with O_DIRECTORY, directories).
    func reopen(_ fd: Int32, flags: Int32, directory: Bool) throws(FsError) -> Int32 {
        let st = try Self.statFD(fd)
        let kind = st.st_mode & S_IFMT
        if directory { guard kind == S_IFDIR else { throw FsError(ENOTDIR) } } else {
            guard kind == S_IFREG else { throw FsError(kind == S_IFDIR ? EISDIR : EACCES) }
        }
        let new = Glibc.open(Self.procPath(fd), flags | (directory ? O_DIRECTORY : 0))
        guard new >= 0 else { throw FsError(errno) }
        return new
    }

    public func open(_ id: UInt64, flags: UInt32) throws(FsError) -> UInt64 {
        if id == Fuse.rootID { throw FsError(EISDIR) }
        let n = try node(id)
        let f = Self.openFlags(flags)
        let writes = f & O_ACCMODE != O_RDONLY || f & O_TRUNC != 0
        if writes && isReadOnly(n) { throw FsError(EROFS) }
        let fd = try reopen(n.fd, flags: f, directory: false)
        return try addHandle(.file(fd: fd, node: id, writable: f & O_ACCMODE != O_RDONLY))
    }

    func fileHandle(_ fh: UInt64) throws(FsError) -> (fd: Int32, node: UInt64, writable: Bool) {
        guard case let .file(fd, node, writable)? = handles[fh] else { throw FsError(EBADF) }
        return (fd, node, writable)
    }

    /// The copying path's READ: into a fresh buffer, through the same preadv loop as the direct one.
    public func read(_ fh: UInt64, offset: UInt64, size: Int) throws(FsError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: max(0, min(size, limits.maxIO)))
        let done = out.withUnsafeMutableBytes { b in
            Result { () throws(FsError) in try read(fh, offset: offset, into: [iovec(iov_base: b.baseAddress, iov_len: b.count)]) }
        }
        out.removeLast(out.count - (try done.get()))
        return out
    }

    /// The copying path's WRITE: from the request's bytes, through the same pwritev loop as the direct one.
    public func write(_ fh: UInt64, offset: UInt64, data: ArraySlice<UInt8>) throws(FsError) -> Int {
        try data.withUnsafeBytes { b in
            Result { () throws(FsError) in
                try write(fh, offset: offset, from: [iovec(iov_base: UnsafeMutableRawPointer(mutating: b.baseAddress), iov_len: b.count)])
            }
        }.get()
    }

    public func fsync(_ fh: UInt64, dataOnly: Bool) throws(FsError) {
        let fd: Int32
        switch handles[fh] {
        case let .file(f, _, _)?: fd = f
        case let .dir(d, _)?: fd = dirfd(d)
        case .root?: return
        case nil: throw FsError(EBADF)
        }
        guard (dataOnly ? fdatasync(fd) : Glibc.fsync(fd)) == 0 else { throw FsError(errno) }
    }
}
