import BrigCore
import BrigLinux
import Glibc
import Testing
@testable import BrigMicroVM

@Suite struct RootfsImageTests {
    func tempDir() -> String {
        var t = Array("/tmp/brig-img-XXXXXX".utf8CString)
        return String(cString: mkdtemp(&t))
    }

    @Test func signatureChangesWithTheTree() throws {
        let d = tempDir()
        defer { Files.removeAll(d) }
        try Files.mkdirAll(d + "/etc")
        try Files.write(d + "/etc/hostname", "a", flags: O_WRONLY | O_CREAT | O_TRUNC)
        let s1 = try RootfsImage.signature(of: d)
        #expect(s1.entries == 2 && s1.bytes >= 1)
        try Files.write(d + "/etc/hostname", "abc", flags: O_WRONLY | O_CREAT | O_TRUNC)
        #expect(try RootfsImage.signature(of: d) != s1)
        #expect(throws: RuntimeError.self) { try RootfsImage.signature(of: d + "/missing") }
    }

    @Test func sparseCopyKeepsContentAndHoles() throws {
        let d = tempDir()
        defer { Files.removeAll(d) }
        let fd = open(d + "/src", O_RDWR | O_CREAT, 0o600)
        #expect(ftruncate(fd, 64 << 20) == 0)
        #expect(pwrite(fd, "head", 4, 0) == 4)
        #expect(pwrite(fd, "tail", 4, (64 << 20) - 4) == 4)
        close(fd)
        try RootfsImage.sparseCopy(d + "/src", to: d + "/dst")
        var st = stat()
        stat(d + "/dst", &st)
        #expect(st.st_size == 64 << 20)
        #expect(st.st_blocks * 512 < 1 << 20)    // still sparse
        let out = try Files.read(d + "/dst")
        #expect(Array(out.prefix(4)) == Array("head".utf8) && Array(out.suffix(4)) == Array("tail".utf8))
    }

    @Test(.enabled(if: access("/sbin/mke2fs", X_OK) == 0))
    func imagesAreBuiltOnceAndCopiedPerContainer() throws {
        let d = tempDir()
        defer { Files.removeAll(d) }
        try Files.mkdirAll(d + "/rootfs/bin")
        try Files.write(d + "/rootfs/bin/hello", "#!/bin/sh\necho hi\n", flags: O_WRONLY | O_CREAT | O_TRUNC)
        let img = RootfsImage(cacheDir: d + "/cache")
        try img.materialize(rootfs: d + "/rootfs", to: d + "/a.ext4")
        let cached = try Files.list(d + "/cache")
        #expect(cached.count == 1 && cached[0].hasSuffix(".ext4"))
        try img.materialize(rootfs: d + "/rootfs", to: d + "/b.ext4")
        #expect(try Files.list(d + "/cache") == cached)              // reused
        // The image holds the file (debugfs reads ext4 without mounting).
        let out = try capture(["/sbin/debugfs", "-R", "cat /bin/hello", d + "/b.ext4"])
        #expect(out.contains("echo hi"))
        // A change in the tree makes a new image and drops the stale one.
        try Files.write(d + "/rootfs/bin/hello", "#!/bin/sh\necho bye\n", flags: O_WRONLY | O_CREAT | O_TRUNC)
        try img.materialize(rootfs: d + "/rootfs", to: d + "/c.ext4")
        let after = try Files.list(d + "/cache")
        #expect(after.count == 1 && after != cached)
        #expect(try capture(["/sbin/debugfs", "-R", "cat /bin/hello", d + "/c.ext4"]).contains("echo bye"))
    }

    @Test(.enabled(if: access("/sbin/mke2fs", X_OK) == 0))
    func mke2fsFailureIsReported() throws {
        var img = RootfsImage(cacheDir: "/proc/brig-no-such-dir")
        img.mke2fs = "/bin/false"
        let d = tempDir()
        defer { Files.removeAll(d) }
        #expect(throws: RuntimeError.self) { try img.materialize(rootfs: d, to: d + "/x.ext4") }
    }

    func capture(_ argv: [String]) throws -> String {
        String(decoding: try Spawn.output(Spawn.Options(path: argv[0], args: argv, env: [])).output, as: UTF8.self)
    }
}
