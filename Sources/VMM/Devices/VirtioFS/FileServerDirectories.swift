import Glibc

/// OPENDIR / READDIR / READDIRPLUS: directory streams on reopened directory nodes; the synthetic
/// root lists the shares.
extension FileServer {
    public func opendir(_ id: UInt64) throws(FsError) -> UInt64 {
        if id == Fuse.rootID { return try addHandle(.root) }
        let n = try node(id)
        let fd = try reopen(n.fd, flags: O_RDONLY | O_CLOEXEC | O_NONBLOCK, directory: true)
        guard let d = fdopendir(fd) else { let e = errno; close(fd); throw FsError(e) }
        return try addHandle(.dir(d, node: id))
    }

    /// Directory entries from `offset` (0, or the `off` of an entry sent before) that fit in
    /// `size` bytes, as `fuse_dirent`s or, with `plus`, `fuse_direntplus`es. A plus entry is a
    /// lookup (the guest will FORGET it), made only once the entry is known to fit; `.` and `..`
    /// and entries that vanished meanwhile carry node id 0, which the guest does not keep.
    public func readdir(_ fh: UInt64, offset: UInt64, size: Int, plus: Bool) throws(FsError) -> [UInt8] {
        var w = FuseWriter()
        let limit = min(size, limits.maxIO)
        func emit(_ name: [UInt8], ino: UInt64, next: UInt64, type: UInt32, lookup: () -> (UInt64, stat)?) -> Bool {
            let need = Fuse.direntLength(name.count) + (plus ? Fuse.entryOutSize : 0)
            guard w.bytes.count + need <= limit else { return false }
            if plus {
                if let (id, st) = lookup() { w.entry(nodeID: id, st, valid: Self.validSeconds) } else { w.zeros(Fuse.entryOutSize) }
            }
            w.dirent(ino: ino, offset: next, type: type, name: name)
            return true
        }
        switch handles[fh] {
        case .root?:
            var entries: [([UInt8], UInt32)] = [([46], 4), ([46, 46], 4)]
            for (i, s) in shares.enumerated() { entries.append((Array(String(i).utf8), s.isDirectory ? 4 : 8)) }
            guard offset < UInt64(entries.count) else { return [] }
            for i in Int(offset)..<entries.count {
                let (name, type) = entries[i]
                let fits = emit(name, ino: i < 2 ? 1 : UInt64(i), next: UInt64(i + 1), type: type) {
                    i < 2 ? nil : try? lookup(parent: Fuse.rootID, name: name)
                }
                if !fits { break }
            }
        case let .dir(d, id)?:
            guard offset <= UInt64(Int.max) else { throw FsError(EINVAL) }
            if offset == 0 { rewinddir(d) } else { seekdir(d, Int(offset)) }
            while true {
                errno = 0
                guard let e = Glibc.readdir(d) else {
                    if errno != 0, w.bytes.isEmpty { throw FsError(errno) }
                    break
                }
                let name = withUnsafeBytes(of: e.pointee.d_name) { raw in Array(raw.prefix(while: { $0 != 0 })) }
                let dots = name == [46] || name == [46, 46]
                let fits = emit(name, ino: UInt64(e.pointee.d_ino), next: UInt64(bitPattern: Int64(e.pointee.d_off)),
                                type: UInt32(e.pointee.d_type)) {
                    dots ? nil : try? lookup(parent: id, name: name)
                }
                if !fits { break }
            }
        default:
            throw FsError(EBADF)
        }
        return w.bytes
    }
}
