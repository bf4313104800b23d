import Testing
import Glibc
import BrigGuestMemory
import Synchronization
@testable import BrigDevices

/// The guest against the file server: escapes from the share, and hostile frames and chains.
@Suite struct VirtioFSHostileTests {
    /// `outside/secret` next to the share; symlinks inside the share point at it every way.
    func escapeTree() -> (TempTree, String) {
        let t = TempTree("vfs-escape")
        mkdir(t.path + "/share", 0o755); mkdir(t.path + "/outside", 0o755); mkdir(t.path + "/share/sub", 0o755)
        t.file("outside/secret", "host secret")
        symlink("/", t.path + "/share/root")
        symlink(t.path + "/outside", t.path + "/share/abs")
        symlink("../outside", t.path + "/share/rel")
        symlink("../../outside/secret", t.path + "/share/sub/deep")
        return (t, t.path + "/share")
    }

    @Test func symlinksAndDotDotNeverLeaveTheShare() throws {
        let (t, share) = escapeTree()
        let c = try FuseClient([FSShare(source: share, readOnly: false)])
        let root = c.lookup(Fuse.rootID, "0").1
        for link in ["root", "abs", "rel"] {
            let (e, node, mode, _) = c.lookup(root, link)
            #expect(e == 0 && mode & S_IFMT == S_IFLNK, "\(link) is handed back as a symlink")
            #expect(c.lookup(node, "secret").0 != 0, "no lookup through \(link)")
            #expect(c.lookup(node, "etc").0 != 0)
            #expect(c.open(node).0 == EACCES)
            #expect(c.open(node, dir: true).0 == ENOTDIR)
        }
        let sub = c.lookup(root, "sub").1
        let deep = c.lookup(sub, "deep").1
        #expect(c.open(deep).0 == EACCES)
        #expect(String(decoding: c.call(.readlink, node: deep).payload, as: UTF8.self) == "../../outside/secret")
        for name in ["..", ".", "../outside", "sub/../../outside", "/etc", "a\u{0}b", ""] {
            #expect(c.lookup(root, name).0 != 0, "name \(name.debugDescription)")
        }
        #expect(c.lookup(sub, "..").0 == EINVAL)
        // CREATE (no O_EXCL) and SETATTR on a symlink to a host file never reach it.
        let (ce, _, _) = c.create(root, "rel", flags: O_WRONLY | O_TRUNC)
        #expect(ce != 0)
        c.uid = 0
        #expect(c.call(.symlink, node: root, FuseClient.name("pw") + FuseClient.name(t.path + "/outside/secret")).error == 0)
        #expect(c.create(root, "pw", flags: O_WRONLY | O_TRUNC).0 == EACCES)
        let pw = c.lookup(root, "pw").1
        #expect(c.setattr(pw, valid: Fuse.fattrSize, size: 0).error != 0)
        _ = c.setattr(pw, valid: Fuse.fattrMode, mode: 0o777)
        #expect(t.read("outside/secret") == "host secret")
        #expect(t.stat("outside/secret").map { $0.st_mode & 0o777 } == 0o644)
        // LINK and RENAME only within the share, by name.
        #expect(c.call(.rename, node: root, { var w = FuseWriter(); w.u64(root); return w.bytes }()
                       + FuseClient.name("../outside/secret") + FuseClient.name("x")).error == EINVAL)
    }

    @Test func hostDeviceNodesFifosAndSocketsAreNeverOpened() throws {
        let t = TempTree("vfs-dev")
        mkfifo(t.path + "/fifo", 0o666)
        let c = try FuseClient([FSShare(source: t.path, readOnly: false)])
        let root = c.lookup(Fuse.rootID, "0").1
        let fifo = c.lookup(root, "fifo").1
        #expect(c.open(fifo, flags: O_RDONLY).0 == EACCES, "a FIFO would block the vCPU")
        #expect(c.create(root, "fifo", flags: O_RDWR).0 == EACCES)
        if geteuid() == 0 {
            #expect(mknod(t.path + "/null", S_IFCHR | 0o666, 0x103) == 0)
            let null = c.lookup(root, "null").1
            #expect(c.open(null, flags: O_RDWR).0 == EACCES)
        }
        // MKNOD of a device node is refused; FIFOs and regular files are fine.
        let mk = { (mode: UInt32, name: String) in c.call(.mknod, node: root, FuseClient.u32s([mode, 0x103, 0, 0]) + FuseClient.name(name)).error }
        #expect(mk(UInt32(S_IFCHR) | 0o666, "c") == EPERM)
        #expect(mk(UInt32(S_IFBLK) | 0o666, "b") == EPERM)
        #expect(mk(UInt32(S_IFIFO) | 0o600, "p") == 0)
        #expect(t.stat("c") == nil && t.stat("b") == nil)
    }

    /// A host process swaps `dir` between a directory and a symlink to `outside` while the guest
    /// looks up `dir/secret`: one-component, no-follow lookups never find the host's secret (a
    /// path-based server resolving "dir/secret" would, whenever the symlink is in place).
    @Test func renameRaceCannotRedirectALookup() throws {
        let (t, share) = escapeTree()
        mkdir(share + "/real", 0o755)
        symlink(t.path + "/outside", share + "/swap")
        let c = try FuseClient([FSShare(source: share, readOnly: false)])
        let root = c.lookup(Fuse.rootID, "0").1
        let stop = StopFlag()
        let racer = Thread {
            var i = 0
            while !stop.flag.load(ordering: .relaxed) {
                rename(share + (i % 2 == 0 ? "/real" : "/swap"), share + "/dir.tmp")
                rename(share + "/dir", share + (i % 2 == 0 ? "/real" : "/swap"))
                rename(share + "/dir.tmp", share + "/dir")
                i += 1
            }
        }
        var found = 0, tries = 0
        while tries < 3000 {
            tries += 1
            let (e, dir, _, _) = c.lookup(root, "dir")
            guard e == 0 else { continue }
            let (e2, node, _, _) = c.lookup(dir, "secret")
            if e2 == 0 { found += 1; _ = c.call(.forget, node: node, { var w = FuseWriter(); w.u64(1); return w.bytes }()) }
            _ = c.call(.forget, node: dir, { var w = FuseWriter(); w.u64(1); return w.bytes }())
        }
        stop.flag.store(true, ordering: .relaxed)
        racer.join()
        #expect(found == 0)
    }

    /// Random and truncated frames, lying lengths, huge sizes, every opcode: the session always
    /// answers within maxReply (or drops a frame without a header), never crashes.
    @Test func hostileFramesAreAnsweredNotFollowed() throws {
        let t = TempTree("vfs-fuzz")
        mkdir(t.path + "/rw", 0o755); mkdir(t.path + "/ro", 0o755)
        t.file("rw/f", String(repeating: "x", count: 5000))
        t.file("ro/g", "read only")
        let c = try FuseClient([FSShare(source: t.path + "/rw", readOnly: false), FSShare(source: t.path + "/ro", readOnly: true)])
        let root = c.lookup(Fuse.rootID, "0").1
        _ = c.lookup(root, "f")
        _ = c.lookup(c.lookup(Fuse.rootID, "1").1, "g")
        var rng = SystemRandomNumberGenerator()
        var answered = 0
        for i in 0..<20_000 {
            var frame: [UInt8]
            let bodyLen = [0, 1, 7, 8, 16, 40, 64, 200, Int.random(in: 0...3000, using: &rng)].randomElement(using: &rng)!
            var body = (0..<bodyLen).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if Bool.random(using: &rng), bodyLen >= 24 { for j in 16..<20 { body[j] = 0xFF } } // huge sizes
            let op = i % 3 == 0 ? UInt32.random(in: 0...60, using: &rng) : Fuse.Op.allCases.randomElement(using: &rng)!.rawValue
            let lie = [UInt32(40 + bodyLen), 0, 39, UInt32.max, UInt32.random(in: 0...5000, using: &rng)].randomElement(using: &rng)!
            let node = [0, 1, 2, root, UInt64.max, UInt64.random(in: 0...10, using: &rng)].randomElement(using: &rng)!
            frame = FuseInHeader(length: lie, opcode: op == Fuse.Op.destroy.rawValue ? 0 : op, unique: UInt64(i), nodeID: node).bytes + body
            if i % 5 == 0 { frame = Array(frame.prefix(Int.random(in: 0...frame.count, using: &rng))) }
            let maxReply = [0, 15, 16, 17, 100, 4096, 1 << 20].randomElement(using: &rng)!
            if let r = c.session.handle(frame[...], maxReply: maxReply) {
                answered += 1
                #expect(r.count <= maxReply && r.count >= 16)
                #expect(FuseReader(r[8...]).remainingU64 == UInt64(i))
            } else {
                #expect(frame.count < 40 || maxReply < 16 || [Fuse.Op.forget.rawValue, Fuse.Op.batchForget.rawValue, Fuse.Op.interrupt.rawValue].contains(op))
            }
        }
        #expect(answered > 1000)
        #expect(c.session.server.handleCount <= c.session.server.limits.maxHandles)
        #expect(t.read("ro/g") == "read only" && t.stat("ro").map { $0.st_mode & 0o7777 } == 0o755)
    }
}

extension FuseReader {
    var remainingU64: UInt64? { var r = self; return r.u64() }
}

extension Fuse.Op: CaseIterable {
    public static var allCases: [Fuse.Op] { (0...60).compactMap { Fuse.Op(rawValue: $0) } }
}

final class StopFlag: Sendable { let flag = Atomic(false) }

/// A plain pthread for the race test.
final class Thread: @unchecked Sendable {
    var t = pthread_t()
    let body: () -> Void
    init(_ body: @escaping () -> Void) {
        self.body = body
        let box = Unmanaged.passRetained(self).toOpaque()
        pthread_create(&t, nil, { p in
            let me = Unmanaged<Thread>.fromOpaque(p!).takeRetainedValue()
            me.body()
            return nil
        }, box)
    }
    func join() { pthread_join(t, nil) }
}
