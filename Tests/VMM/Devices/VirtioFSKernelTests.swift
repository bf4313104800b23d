import Testing
import Glibc
@testable import BrigDevices

/// The file server driven by a real Linux FUSE client: this host's kernel over /dev/fuse (the
/// same FUSE requests virtio-fs carries, minus the virtqueue), mounted on a temp directory, with
/// ordinary file operations on the mount and their effect checked on the host side. Root only
/// (mount), and only where /dev/fuse exists.
@Suite(.enabled(if: geteuid() == 0 && access("/dev/fuse", R_OK | W_OK) == 0, "needs root and /dev/fuse"))
struct VirtioFSKernelTests {
    @Test func aLinuxKernelDrivesTheFileServer() throws {
        let t = TempTree("vfs-kernel")
        mkdir(t.path + "/share", 0o755); mkdir(t.path + "/ro", 0o755); mkdir(t.path + "/mnt", 0o755)
        t.file("share/hello", "hello from the host\n")
        t.file("ro/keep", "keep")
        t.file("hosts", "127.0.0.1 localhost\n")
        let session = FuseSession(server: try FileServer(shares: [
            FSShare(source: t.path + "/share", readOnly: false), FSShare(source: t.path + "/hosts", readOnly: false),
            FSShare(source: t.path + "/ro", readOnly: true)]))
        let fd = Glibc.open("/dev/fuse", O_RDWR | O_CLOEXEC)
        try #require(fd >= 0)
        let mnt = t.path + "/mnt"
        let opts = "fd=\(fd),rootmode=40000,user_id=0,group_id=0,default_permissions,allow_other"
        try #require(mount("brig-vfs-test", mnt, "fuse", UInt(MS_NOSUID | MS_NODEV), opts) == 0, "mount: \(errno)")
        let server = Thread {
            var buf = [UInt8](repeating: 0, count: (1 << 20) + 8192)
            while true {
                let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                if n < 0, errno == EINTR || errno == ENOENT { continue }
                guard n > 0 else { return }
                if let reply = session.handle(buf[0..<n], maxReply: (1 << 20) + 4096) {
                    _ = reply.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
                }
            }
        }
        defer { umount2(mnt, Int32(MNT_DETACH)); close(fd); server.join() }

        let m = mnt + "/0"
        // Read what the host wrote; write what the host reads.
        let r = TempTree.readFile(m + "/hello")
        #expect(r == "hello from the host\n")
        #expect(TempTree.writeFile(m + "/new", String(repeating: "z", count: 300_000)))
        #expect(t.stat("share/new")?.st_size == 300_000)
        #expect(TempTree.readFile(m + "/new")?.count == 300_000)
        #expect(Glibc.mkdir(m + "/dir", 0o700) == 0 && t.stat("share/dir").map { $0.st_mode & 0o777 } == 0o700)
        #expect(rename(m + "/new", m + "/dir/moved") == 0 && t.stat("share/dir/moved") != nil)
        #expect(truncate(m + "/dir/moved", 10) == 0 && t.stat("share/dir/moved")?.st_size == 10)
        #expect(chmod(m + "/dir/moved", 0o4711) == 0 && t.stat("share/dir/moved").map { $0.st_mode & 0o7777 } == 0o711)
        #expect(chown(m + "/dir/moved", 123, 456) == 0 && t.stat("share/dir/moved").map { ($0.st_uid, $0.st_gid) } ?? (0, 0) == (123, 456))
        #expect(Glibc.symlink("/etc/passwd", m + "/link") == 0)
        var target = [CChar](repeating: 0, count: 256)
        #expect(readlink(m + "/link", &target, 255) == 11)
        #expect(TempTree.readFile(m + "/link") == nil || TempTree.readFile(m + "/link") == TempTree.readFile("/etc/passwd"),
                "a symlink resolves in the client's namespace, never inside the server")
        #expect(Set(TempTree.list(m)) == ["hello", "dir", "link"])
        #expect(unlink(m + "/dir/moved") == 0 && rmdir(m + "/dir") == 0 && t.stat("share/dir") == nil)
        // The file share is the file alone; the read-only share refuses writes on the host side.
        #expect(TempTree.readFile(mnt + "/1") == "127.0.0.1 localhost\n")
        #expect(Set(TempTree.list(mnt)) == ["0", "1", "2"])
        #expect(!TempTree.writeFile(mnt + "/2/x", "x") && errno == EROFS)
        #expect(Glibc.open(mnt + "/2/keep", O_WRONLY) == -1 && errno == EROFS)
        #expect(t.read("ro/keep") == "keep" && t.stat("ro/x") == nil)
        var sfs = statvfs()
        #expect(statvfs(m, &sfs) == 0 && sfs.f_bsize > 0)
    }
}

extension TempTree {
    static func readFile(_ path: String) -> String? {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = [], buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = Glibc.read(fd, &buf, buf.count)
            guard n > 0 else { break }
            out += buf[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func writeFile(_ path: String, _ text: String) -> Bool {
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        var done = 0
        while done < bytes.count {
            let n = bytes[done...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { return false }
            done += n
        }
        return true
    }

    static func list(_ path: String) -> [String] {
        guard let d = opendir(path) else { return [] }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let n = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            if n != "." && n != ".." { names.append(n) }
        }
        return names
    }
}

/// A non-recursive share (`bind`, not `rbind`) shows what is under a submount, as a bind mount
/// does; a recursive one shows the submount. Root only (mount).
@Test(.enabled(if: geteuid() == 0, "needs root (mount)")) func nonRecursiveSharesHideSubmounts() throws {
    let t = TempTree("vfs-rbind")
    mkdir(t.path + "/src", 0o755); mkdir(t.path + "/src/sub", 0o755)
    t.file("src/sub/under", "under the mount")
    try #require(mount("tmpfs", t.path + "/src/sub", "tmpfs", 0, "size=1m") == 0)
    defer { umount2(t.path + "/src/sub", Int32(MNT_DETACH)) }
    t.file("src/sub/on-top", "on the mount")
    let c = try FuseClient([FSShare(source: t.path + "/src", readOnly: false, recursive: false),
                            FSShare(source: t.path + "/src", readOnly: false, recursive: true)])
    let plain = c.lookup(c.lookup(Fuse.rootID, "0").1, "sub").1
    let rec = c.lookup(c.lookup(Fuse.rootID, "1").1, "sub").1
    #expect(c.lookup(plain, "under").0 == 0 && c.lookup(plain, "on-top").0 == ENOENT)
    #expect(c.lookup(rec, "on-top").0 == 0 && c.lookup(rec, "under").0 == ENOENT)
}
