import Glibc

/// Decodes one FUSE request frame, runs it on the `FileServer`, encodes the reply. Pure bytes in,
/// bytes out (nil: no reply, e.g. FORGET), so hostile frames can be thrown at it without a
/// virtqueue. A frame too short for its header gets nothing (there is no `unique` to answer);
/// one whose arguments are short or inconsistent gets EINVAL; an unknown opcode ENOSYS; anything
/// before FUSE_INIT EIO. Replies never exceed `maxReply` bytes (a READ or READDIR is cut to fit;
/// any other reply that would not fit becomes ERANGE).
public final class FuseSession {
    public let server: FileServer
    public private(set) var initialized = false
    public private(set) var stats = (requests: 0, errors: 0, malformed: 0)

    public init(server: FileServer) { self.server = server }

    public func handle(_ frame: ArraySlice<UInt8>, maxReply: Int) -> [UInt8]? {
        guard frame.count >= Fuse.inHeaderSize, let h = FuseInHeader(frame) else { stats.malformed += 1; return nil }
        stats.requests += 1
        let end = frame.startIndex + min(Int(h.length), frame.count)
        guard Int(h.length) >= Fuse.inHeaderSize, Int(h.length) <= frame.count else {
            stats.malformed += 1
            return fit(Fuse.reply(unique: h.unique, error: EINVAL), h, maxReply)
        }
        let body = frame[(frame.startIndex + Fuse.inHeaderSize)..<end]
        guard let op = Fuse.Op(rawValue: h.opcode) else { return fit(Fuse.reply(unique: h.unique, error: ENOSYS), h, maxReply) }
        if op == .forget || op == .batchForget { forget(op, h, body); return nil }
        if op == .interrupt { return nil }
        do throws(FsError) {
            if op != .initialize && !initialized { throw FsError(EIO) }
            guard let payload = try run(op, h, body, room: maxReply - Fuse.outHeaderSize) else {
                stats.malformed += 1
                return fit(Fuse.reply(unique: h.unique, error: EINVAL), h, maxReply)
            }
            return fit(Fuse.reply(unique: h.unique, payload), h, maxReply)
        } catch {
            stats.errors += 1
            return fit(Fuse.reply(unique: h.unique, error: error.errno), h, maxReply)
        }
    }

    /// A READ or WRITE served on guest memory directly (VirtioFS.serveDirect), for the counts.
    func countDirect(error: Bool) {
        stats.requests += 1
        if error { stats.errors += 1 }
    }

    private func fit(_ reply: [UInt8], _ h: FuseInHeader, _ max: Int) -> [UInt8]? {
        if reply.count <= max { return reply }
        let short = Fuse.reply(unique: h.unique, error: ERANGE)
        return short.count <= max ? short : nil
    }

    private func forget(_ op: Fuse.Op, _ h: FuseInHeader, _ body: ArraySlice<UInt8>) {
        var r = FuseReader(body)
        if op == .forget { if let n = r.u64() { server.forget(h.nodeID, count: n) }; return }
        guard let count = r.u32(), r.u32() != nil else { return }
        for _ in 0..<min(Int(count), body.count / 16) {
            guard let id = r.u64(), let n = r.u64() else { return }
            server.forget(id, count: n)
        }
    }

    private func entry(_ e: (UInt64, stat)) -> [UInt8] {
        var w = FuseWriter()
        w.entry(nodeID: e.0, e.1, valid: FileServer.validSeconds)
        return w.bytes
    }

    private func attrOut(_ st: stat) -> [UInt8] {
        var w = FuseWriter()
        w.u64(FileServer.validSeconds); w.u32(0); w.u32(0); w.attr(st)
        return w.bytes
    }

    /// The reply payload, or nil when the arguments are malformed.
    private func run(_ op: Fuse.Op, _ h: FuseInHeader, _ body: ArraySlice<UInt8>, room: Int) throws(FsError) -> [UInt8]? {
        var r = FuseReader(body)
        let s = server
        let caller = FsCaller(uid: h.uid, gid: h.gid)
        switch op {
        case .initialize:
            guard let major = r.u32(), let minor = r.u32(), let readahead = r.u32(), let flags = r.u32() else { return nil }
            _ = minor
            guard major == Fuse.major else { throw FsError(EPROTO) }
            s.reset()
            initialized = true
            let want = Fuse.asyncRead | Fuse.bigWrites | Fuse.autoInvalData | Fuse.doReaddirplus | Fuse.maxPagesFlag
            var w = FuseWriter()
            w.u32(Fuse.major); w.u32(Fuse.minor); w.u32(min(readahead, UInt32(s.limits.maxIO))); w.u32(flags & want)
            w.u16(16); w.u16(12); w.u32(UInt32(s.limits.maxIO)); w.u32(1)
            w.u16(UInt16(s.limits.maxIO / 4096)); w.u16(0); w.u32(0); w.zeros(28)
            return w.bytes
        case .destroy:
            s.reset()
            initialized = false
            return []
        case .lookup:
            guard let name = r.cString() else { return nil }
            return entry(try s.lookup(parent: h.nodeID, name: name))
        case .getattr:
            return attrOut(try s.getattr(h.nodeID))
        case .setattr:
            var a = FileServer.SetAttr()
            guard let valid = r.u32(), r.skip(4), let fh = r.u64(), let size = r.u64(), r.skip(8),
                  let at = r.u64(), let mt = r.u64(), r.skip(8), let atn = r.u32(), let mtn = r.u32(), r.skip(4),
                  let mode = r.u32(), r.skip(4), let uid = r.u32(), let gid = r.u32() else { return nil }
            guard atn < 1_000_000_000, mtn < 1_000_000_000 else { throw FsError(EINVAL) }
            a.valid = valid; a.fh = fh; a.size = size; a.mode = mode; a.uid = uid; a.gid = gid
            a.atime = timespec(tv_sec: Int(Int64(bitPattern: at)), tv_nsec: Int(atn))
            a.mtime = timespec(tv_sec: Int(Int64(bitPattern: mt)), tv_nsec: Int(mtn))
            return attrOut(try s.setattr(h.nodeID, a))
        case .readlink:
            return try s.readlink(h.nodeID)
        case .symlink:
            guard let name = r.cString(), let target = r.cString() else { return nil }
            return entry(try s.symlink(parent: h.nodeID, name: name, target: target, caller: caller))
        case .mknod:
            guard let mode = r.u32(), r.skip(12), let name = r.cString() else { return nil }
            return entry(try s.mknod(parent: h.nodeID, name: name, mode: mode, caller: caller))
        case .mkdir:
            guard let mode = r.u32(), r.skip(4), let name = r.cString() else { return nil }
            return entry(try s.mkdir(parent: h.nodeID, name: name, mode: mode, caller: caller))
        case .unlink, .rmdir:
            guard let name = r.cString() else { return nil }
            try s.unlink(parent: h.nodeID, name: name, directory: op == .rmdir)
            return []
        case .rename, .rename2:
            guard let newDir = r.u64() else { return nil }
            var flags: UInt32 = 0
            if op == .rename2 { guard let f = r.u32(), r.skip(4) else { return nil }; flags = f }
            guard let old = r.cString(), let new = r.cString() else { return nil }
            try s.rename(parent: h.nodeID, name: old, newParent: newDir, newName: new, flags: flags)
            return []
        case .link:
            guard let old = r.u64(), let name = r.cString() else { return nil }
            return entry(try s.link(node: old, parent: h.nodeID, name: name))
        case .open, .opendir:
            guard let flags = r.u32() else { return nil }
            let fh = op == .open ? try s.open(h.nodeID, flags: flags) : try s.opendir(h.nodeID)
            var w = FuseWriter()
            w.u64(fh); w.u32(0); w.u32(0)
            return w.bytes
        case .read:
            guard let fh = r.u64(), let off = r.u64(), let size = r.u32() else { return nil }
            return try s.read(fh, offset: off, size: min(Int(size), max(0, room)))
        case .write:
            guard let fh = r.u64(), let off = r.u64(), let size = r.u32(), r.skip(20) else { return nil }
            let data = r.remaining
            guard Int(size) <= data.count else { return nil }
            let n = try s.write(fh, offset: off, data: data.prefix(Int(size)))
            var w = FuseWriter()
            w.u32(UInt32(n)); w.u32(0)
            return w.bytes
        case .statfs:
            let f = try s.statfs(h.nodeID)
            var w = FuseWriter()
            for v in [f.f_blocks, f.f_bfree, f.f_bavail, f.f_files, f.f_ffree] { w.u64(UInt64(v)) }
            w.u32(UInt32(truncatingIfNeeded: f.f_bsize)); w.u32(UInt32(truncatingIfNeeded: f.f_namemax))
            w.u32(UInt32(truncatingIfNeeded: f.f_frsize)); w.zeros(28)
            return w.bytes
        case .release, .releasedir:
            guard let fh = r.u64() else { return nil }
            s.release(fh)
            return []
        case .flush:
            return []
        case .fsync, .fsyncdir:
            guard let fh = r.u64(), let flags = r.u32() else { return nil }
            try s.fsync(fh, dataOnly: flags & 1 != 0)
            return []
        case .readdir, .readdirplus:
            guard let fh = r.u64(), let off = r.u64(), let size = r.u32() else { return nil }
            return try s.readdir(fh, offset: off, size: min(Int(size), max(0, room)), plus: op == .readdirplus)
        case .create:
            guard let flags = r.u32(), let mode = r.u32(), r.skip(8), let name = r.cString() else { return nil }
            let (id, st, fh) = try s.create(parent: h.nodeID, name: name, flags: flags, mode: mode, caller: caller)
            var w = FuseWriter()
            w.entry(nodeID: id, st, valid: FileServer.validSeconds)
            w.u64(fh); w.u32(0); w.u32(0)
            return w.bytes
        case .syncfs:
            return []
        default:
            // xattrs, locks (the guest kernel keeps them locally), ioctl, poll, bmap, fallocate,
            // lseek, copy_file_range, access: the guest kernel falls back or reports ENOSYS.
            throw FsError(ENOSYS)
        }
    }
}
