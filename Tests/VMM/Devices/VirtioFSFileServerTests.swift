import Testing
import Glibc
@testable import BrigDevices

/// A FUSE client over a `FuseSession` (frames in, frames out, no virtqueue), on temp directories.
final class FuseClient {
    let session: FuseSession
    var unique: UInt64 = 0
    var uid: UInt32 = 0, gid: UInt32 = 0

    init(_ shares: [FSShare], limits: FileServerLimits = FileServerLimits()) throws {
        session = FuseSession(server: try FileServer(shares: shares, limits: limits))
        var w = FuseWriter()
        w.u32(7); w.u32(31); w.u32(1 << 17); w.u32(0xFFFF_FFFF); w.zeros(48)
        let r = call(.initialize, node: 0, w.bytes)
        precondition(r.error == 0, "FUSE_INIT failed: \(r.error)")
    }

    struct Reply { var error: Int32; var payload: [UInt8] }

    func call(_ op: Fuse.Op, node: UInt64, _ body: [UInt8] = [], maxReply: Int = 1 << 21) -> Reply {
        unique += 1
        let h = FuseInHeader(length: UInt32(Fuse.inHeaderSize + body.count), opcode: op.rawValue, unique: unique,
                             nodeID: node, uid: uid, gid: gid, pid: 1)
        guard let out = session.handle((h.bytes + body)[...], maxReply: maxReply) else { return Reply(error: -1, payload: []) }
        var r = FuseReader(out[...])
        let len = r.u32()!, err = Int32(bitPattern: r.u32()!), u = r.u64()!
        precondition(Int(len) == out.count && u == unique)
        return Reply(error: -err, payload: Array(out[16...]))
    }

    static func name(_ s: String) -> [UInt8] { Array(s.utf8) + [0] }
    static func u32s(_ v: [UInt32]) -> [UInt8] { var w = FuseWriter(); v.forEach { w.u32($0) }; return w.bytes }

    /// LOOKUP: (errno, node id, mode, size).
    func lookup(_ parent: UInt64, _ n: String) -> (Int32, UInt64, UInt32, UInt64) {
        let r = call(.lookup, node: parent, Self.name(n))
        guard r.error == 0 else { return (r.error, 0, 0, 0) }
        var rd = FuseReader(r.payload[...])
        let id = rd.u64()!
        _ = rd.skip(32 + 8)
        let size = rd.u64()!
        _ = rd.skip(8 * 4 + 12)
        return (0, id, rd.u32()!, size)
    }

    func mkdir(_ parent: UInt64, _ n: String, mode: UInt32 = 0o755) -> Reply { call(.mkdir, node: parent, Self.u32s([mode, 0]) + Self.name(n)) }

    /// CREATE: (errno, node, fh).
    func create(_ parent: UInt64, _ n: String, flags: Int32 = O_RDWR, mode: UInt32 = 0o644) -> (Int32, UInt64, UInt64) {
        let r = call(.create, node: parent, Self.u32s([UInt32(bitPattern: flags), mode, 0, 0]) + Self.name(n))
        guard r.error == 0 else { return (r.error, 0, 0) }
        var rd = FuseReader(r.payload[...])
        let id = rd.u64()!
        _ = rd.skip(Fuse.entryOutSize - 8)
        return (0, id, rd.u64()!)
    }

    func open(_ node: UInt64, flags: Int32 = O_RDONLY, dir: Bool = false) -> (Int32, UInt64) {
        let r = call(dir ? .opendir : .open, node: node, Self.u32s([UInt32(bitPattern: flags), 0]))
        guard r.error == 0 else { return (r.error, 0) }
        var rd = FuseReader(r.payload[...])
        return (0, rd.u64()!)
    }

    func write(_ fh: UInt64, _ data: [UInt8], offset: UInt64 = 0) -> Reply {
        var w = FuseWriter()
        w.u64(fh); w.u64(offset); w.u32(UInt32(data.count)); w.u32(0); w.u64(0); w.u32(0); w.u32(0)
        return call(.write, node: 0, w.bytes + data)
    }

    func read(_ fh: UInt64, size: UInt32, offset: UInt64 = 0, maxReply: Int = 1 << 21) -> Reply {
        var w = FuseWriter()
        w.u64(fh); w.u64(offset); w.u32(size); w.u32(0); w.u64(0); w.u32(0); w.u32(0)
        return call(.read, node: 0, w.bytes, maxReply: maxReply)
    }

    func release(_ fh: UInt64, dir: Bool = false) { _ = call(dir ? .releasedir : .release, node: 0, [UInt8](repeating: 0, count: 24).enumerated().map { $0.offset < 8 ? UInt8(truncatingIfNeeded: fh >> (8 * UInt64($0.offset))) : 0 }) }

    /// READDIR(PLUS) names from offset 0, in as many calls as it takes.
    func list(_ node: UInt64, plus: Bool, size: UInt32 = 4096) -> [String] {
        let (e, fh) = open(node, dir: true)
        guard e == 0 else { return ["error \(e)"] }
        defer { release(fh, dir: true) }
        var names: [String] = [], off: UInt64 = 0
        for _ in 0..<10_000 {
            var w = FuseWriter()
            w.u64(fh); w.u64(off); w.u32(size); w.u32(0); w.u64(0); w.u32(0); w.u32(0)
            let r = call(plus ? .readdirplus : .readdir, node: node, w.bytes)
            guard r.error == 0, !r.payload.isEmpty else { break }
            var rd = FuseReader(r.payload[...])
            while rd.remaining.count > 0 {
                if plus { _ = rd.skip(Fuse.entryOutSize) }
                _ = rd.u64(); off = rd.u64()!
                let len = Int(rd.u32()!); _ = rd.u32()
                names.append(String(decoding: rd.remaining.prefix(len), as: UTF8.self))
                _ = rd.skip(len + Fuse.direntPadding(len))
            }
        }
        return names
    }

    func setattr(_ node: UInt64, valid: UInt32, size: UInt64 = 0, mode: UInt32 = 0, uid: UInt32 = 0, gid: UInt32 = 0) -> Reply {
        var w = FuseWriter()
        w.u32(valid); w.u32(0); w.u64(0); w.u64(size); w.u64(0); w.u64(0); w.u64(0); w.u64(0)
        w.u32(0); w.u32(0); w.u32(0); w.u32(mode); w.u32(0); w.u32(uid); w.u32(gid); w.u32(0)
        return call(.setattr, node: node, w.bytes)
    }
}

/// A temp directory removed at the end (rm -rf through the shell: trees with symlinks and FIFOs).
final class TempTree {
    let path: String
    init(_ name: String = "vfs") {
        var t = Array("/tmp/brig-\(name)-XXXXXX".utf8CString)
        path = t.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
    }
    deinit { _ = system("rm -rf '\(path)'") }
    func file(_ rel: String, _ text: String) { let fd = Glibc.open(path + "/" + rel, O_WRONLY | O_CREAT | O_TRUNC, 0o644); _ = Glibc.write(fd, text, text.utf8.count); close(fd) }
    func read(_ rel: String) -> String? {
        let fd = Glibc.open(path + "/" + rel, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var b = [UInt8](repeating: 0, count: 4096)
        let n = Glibc.read(fd, &b, b.count)
        return String(decoding: b[0..<max(n, 0)], as: UTF8.self)
    }
    func stat(_ rel: String) -> stat? { var st = Glibc.stat(); return lstat(path + "/" + rel, &st) == 0 ? st : nil }
}

@Suite struct VirtioFSFileServerTests {
    @Test func directoryShareLifecycle() throws {
        let t = TempTree()
        t.file("hello.txt", "hello world")
        let c = try FuseClient([FSShare(source: t.path, readOnly: false)])
        let (e0, share, mode0, _) = c.lookup(Fuse.rootID, "0")
        #expect(e0 == 0 && mode0 & S_IFMT == S_IFDIR)
        #expect(c.lookup(Fuse.rootID, "1").0 == ENOENT)
        #expect(c.lookup(Fuse.rootID, "00").0 == ENOENT)

        let (e1, file, mode1, size1) = c.lookup(share, "hello.txt")
        #expect(e1 == 0 && mode1 & S_IFMT == S_IFREG && size1 == 11)
        #expect(c.call(.getattr, node: file, [UInt8](repeating: 0, count: 16)).error == 0)
        let (eo, fh) = c.open(file)
        #expect(eo == 0)
        #expect(c.read(fh, size: 5).payload == Array("hello".utf8))
        #expect(c.read(fh, size: 100, offset: 6).payload == Array("world".utf8))
        #expect(c.read(fh, size: 100, maxReply: 16 + 3).payload == Array("hel".utf8))
        c.release(fh)

        c.uid = 1234; c.gid = 4321
        let md = c.mkdir(share, "d", mode: 0o750)
        #expect(md.error == 0)
        var rd = FuseReader(md.payload[...])
        let dir = rd.u64()!
        #expect(t.stat("d").map { $0.st_mode & 0o7777 } == 0o750)
        if geteuid() == 0 { #expect(t.stat("d").map { ($0.st_uid, $0.st_gid) } ?? (0, 0) == (1234, 4321)) }

        let (ec, f2, wfh) = c.create(dir, "new.txt", flags: O_RDWR, mode: 0o4755)
        #expect(ec == 0 && f2 != 0)
        #expect(c.write(wfh, Array("abcdef".utf8)).error == 0)
        c.release(wfh)
        #expect(t.read("d/new.txt") == "abcdef")
        #expect(t.stat("d/new.txt").map { $0.st_mode & 0o7777 } == 0o755, "set-uid is stripped")
        #expect(c.create(dir, "new.txt", flags: O_RDWR | O_EXCL).0 == EEXIST)

        #expect(c.setattr(f2, valid: Fuse.fattrSize, size: 2).error == 0)
        #expect(t.read("d/new.txt") == "ab")
        #expect(c.setattr(f2, valid: Fuse.fattrMode, mode: 0o6711).error == 0)
        #expect(t.stat("d/new.txt").map { $0.st_mode & 0o7777 } == 0o711)

        #expect(c.list(dir, plus: false).sorted() == [".", "..", "new.txt"])
        #expect(c.list(share, plus: true).sorted() == [".", "..", "d", "hello.txt"])
        #expect(c.list(Fuse.rootID, plus: true) == [".", "..", "0"])

        let rn = c.call(.rename, node: dir, { var w = FuseWriter(); w.u64(share); return w.bytes }() + FuseClient.name("new.txt") + FuseClient.name("moved.txt"))
        #expect(rn.error == 0 && t.read("moved.txt") == "ab")
        #expect(c.call(.unlink, node: share, FuseClient.name("moved.txt")).error == 0 && t.stat("moved.txt") == nil)
        #expect(c.call(.rmdir, node: share, FuseClient.name("d")).error == 0 && t.stat("d") == nil)
        #expect(c.call(.statfs, node: share).error == 0)
    }

    @Test func readdirAcrossManyCallsSeesEveryEntryOnce() throws {
        let t = TempTree()
        for i in 0..<300 { t.file("f\(i)", "") }
        let c = try FuseClient([FSShare(source: t.path, readOnly: false)])
        let share = c.lookup(Fuse.rootID, "0").1
        for plus in [false, true] {
            let names = c.list(share, plus: plus, size: 512).filter { $0.hasPrefix("f") }
            #expect(names.count == 300 && Set(names).count == 300)
        }
    }

    @Test func readOnlyShareRefusesEveryChangeOnTheHost() throws {
        let t = TempTree()
        t.file("a", "keep")
        let c = try FuseClient([FSShare(source: t.path, readOnly: true)])
        let share = c.lookup(Fuse.rootID, "0").1
        let file = c.lookup(share, "a").1
        #expect(c.create(share, "b").0 == EROFS)
        #expect(c.mkdir(share, "d").error == EROFS)
        #expect(c.open(file, flags: O_WRONLY).0 == EROFS)
        #expect(c.open(file, flags: O_RDONLY | O_TRUNC).0 == EROFS)
        #expect(c.setattr(file, valid: Fuse.fattrSize, size: 0).error == EROFS)
        #expect(c.call(.unlink, node: share, FuseClient.name("a")).error == EROFS)
        #expect(c.call(.symlink, node: share, FuseClient.name("l") + FuseClient.name("/")).error == EROFS)
        let (e, fh) = c.open(file)
        #expect(e == 0 && c.read(fh, size: 10).payload == Array("keep".utf8))
        #expect(c.write(fh, Array("x".utf8)).error != 0)
        #expect(t.read("a") == "keep" && t.stat("b") == nil)
        #expect(c.mkdir(Fuse.rootID, "x").error == EROFS)
    }

    @Test func fileShareIsTheFileAlone() throws {
        let t = TempTree()
        t.file("hosts", "127.0.0.1 localhost\n")
        t.file("secret", "no")
        let c = try FuseClient([FSShare(source: t.path + "/hosts", readOnly: false)])
        let (e, node, mode, size) = c.lookup(Fuse.rootID, "0")
        #expect(e == 0 && mode & S_IFMT == S_IFREG && size == 20)
        #expect(c.lookup(node, "secret").0 == ENOTDIR)
        let (eo, fh) = c.open(node, flags: O_RDWR)
        #expect(eo == 0 && c.write(fh, Array("::1".utf8)).error == 0)
        #expect(t.read("hosts")?.hasPrefix("::1") == true)
        #expect(c.list(Fuse.rootID, plus: false) == [".", "..", "0"])
    }

    @Test func limitsOnNodesAndHandles() throws {
        let t = TempTree()
        for i in 0..<10 { t.file("f\(i)", "x") }
        var l = FileServerLimits(); l.maxNodes = 4; l.maxHandles = 2
        let c = try FuseClient([FSShare(source: t.path, readOnly: false)], limits: l)
        let share = c.lookup(Fuse.rootID, "0").1
        let ids = (0..<10).map { c.lookup(share, "f\($0)") }
        #expect(ids.filter { $0.0 == 0 }.count == 3 && ids.contains { $0.0 == ENFILE })
        #expect(c.open(ids[0].1).0 == 0 && c.open(ids[0].1).0 == 0 && c.open(ids[0].1).0 == EMFILE)
        // FORGET frees a node.
        _ = c.call(.forget, node: ids[1].1, { var w = FuseWriter(); w.u64(1); return w.bytes }())
        #expect(c.lookup(share, "f9").0 == 0)
        #expect(c.session.server.nodeCount == 4)
    }
}
