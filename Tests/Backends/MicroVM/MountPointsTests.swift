import BrigCore
import BrigLinux
import BrigOCI
import Glibc
import Testing
@testable import BrigMicroVM

@Suite struct MountPointsTests {
    func tempDir() throws -> String {
        var t = Array("/tmp/brig-mountpoints-XXXXXX".utf8CString)
        guard let p = mkdtemp(&t) else { throw RuntimeError(.system, "mkdtemp") }
        return String(cString: p)
    }

    func kind(_ path: String) -> mode_t? {
        var st = stat()
        return lstat(path, &st) == 0 ? st.st_mode & S_IFMT : nil
    }

    @Test func destinationsInTheRootfsItselfInOrderFileBindsAsFiles() throws {
        let w = try tempDir()
        defer { Files.removeAll(w) }
        try Files.write(w + "/hosts", "127.0.0.1 localhost\n", flags: O_WRONLY | O_CREAT)
        var s = Spec()
        s.process = Process(args: ["sh"], cwd: "/work/dir")
        s.mounts = [Mount(destination: "/proc", type: "proc", source: "proc", options: nil),
                    Mount(destination: "/dev", type: "tmpfs", source: "tmpfs", options: nil),
                    Mount(destination: "/dev/pts", type: "devpts", source: "devpts", options: nil),
                    Mount(destination: "/etc/new-hosts", type: "bind", source: "hosts", options: ["bind", "ro"]),
                    Mount(destination: "//data/./x/../y", type: "none", source: w, options: ["rbind"]),
                    Mount(destination: "/data/y/inner", type: "bind", source: w, options: ["bind"])]
        let t = RootfsMountPoints.targets(s, bundle: w)
        #expect(t == [.init(path: "/proc", kind: .directory), .init(path: "/dev", kind: .directory),
                      .init(path: "/etc/new-hosts", kind: .file), .init(path: "/data/y", kind: .directory),
                      .init(path: "/work/dir", kind: .directory)],
                "/dev/pts is in the /dev tmpfs and /data/y/inner in the /data/y bind: the guest creates those")
    }

    @Test func missingDestinationsAreCreatedAndExistingOnesLeftAlone() throws {
        let w = try tempDir()
        defer { Files.removeAll(w) }
        let root = w + "/rootfs"
        try Files.mkdirAll(root + "/etc")
        try Files.write(root + "/etc/hosts", "keep\n", flags: O_WRONLY | O_CREAT)
        try RootfsMountPoints.create([.init(path: "/etc/hosts", kind: .file), .init(path: "/etc/resolv.conf", kind: .file),
                                      .init(path: "/a/b/c", kind: .directory)], in: root)
        #expect(try Files.readString(root + "/etc/hosts") == "keep\n")
        #expect(kind(root + "/etc/resolv.conf") == S_IFREG)
        #expect(kind(root + "/a/b/c") == S_IFDIR)
    }

    /// Symlinks in a hostile rootfs (absolute, `..` chains, dangling) resolve inside it: nothing is
    /// created outside the rootfs, and what is created is where the guest will resolve the path.
    @Test func symlinksInTheRootfsNeverCreateOutsideIt() throws {
        let w = try tempDir()
        defer { Files.removeAll(w) }
        let root = w + "/rootfs", outside = w + "/outside"
        try Files.mkdirAll(root)
        try Files.mkdirAll(outside)
        #expect(symlink(outside, root + "/abs") == 0)                  // the host path, absolute
        #expect(symlink("../../../../../../outside", root + "/up") == 0) // climbs out lexically
        #expect(symlink(outside + "/dangling", root + "/dangle") == 0)
        try RootfsMountPoints.create([.init(path: "/abs/planted", kind: .file), .init(path: "/up/dir/sub", kind: .directory),
                                      .init(path: "/dangle", kind: .file), .init(path: "/abs/../../../escape", kind: .directory)],
                                     in: root)
        #expect(try Files.list(outside).isEmpty, "nothing created in the host directory the symlinks name")
        #expect(kind(w + "/escape") == nil && kind(w + "/dir") == nil)
        #expect(kind(root + outside + "/planted") == S_IFREG, "an absolute symlink resolves inside the rootfs")
        #expect(kind(root + "/outside/dir/sub") == S_IFDIR, "`..` stops at the rootfs")
        #expect(kind(root + outside + "/dangling") == S_IFREG)
        #expect(kind(root + "/escape") == S_IFDIR)
    }

    @Test func aDestinationThroughAFileFailsNamingIt() throws {
        let w = try tempDir()
        defer { Files.removeAll(w) }
        try Files.write(w + "/file", "x", flags: O_WRONLY | O_CREAT)
        do {
            try RootfsMountPoints.create([.init(path: "/file/sub", kind: .directory)], in: w)
            Issue.record("created a directory below a file")
        } catch {
            #expect(error.message.contains("/file/sub"))
        }
    }
}
