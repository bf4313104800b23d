import BrigLinux
import BrigOCI
import Glibc
import Testing

@Suite("root, mounts and devices", .enabled(if: Harness.isRoot, "needs root"))
struct MountTests {
    @Test func readonlyRootAndWritableTmpfs() throws {
        let h = try Harness(); defer { h.cleanup() }
        let r = try h.run(Harness.spec(["sh", "-c", "touch /x 2>/dev/null && echo wrote-root; touch /tmp/y && echo wrote-tmp"]),
                          id: Harness.uniqueID("ro"))
        #expect(r.out == "wrote-tmp\n", "\(r.err)")
        var rw = Harness.spec(["sh", "-c", "touch /x && echo wrote-root"])
        rw.root?.readonly = false
        #expect(try h.run(rw, id: Harness.uniqueID("rw")).out == "wrote-root\n")
    }

    @Test func maskedAndReadonlyPaths() throws {
        let h = try Harness(); defer { h.cleanup() }
        var s = Harness.spec(["sh", "-c", """
            wc -c < /proc/timer_list; ls /proc/acpi | wc -l
            echo 1 > /proc/sys/kernel/printk 2>/dev/null && echo sys-writable
            echo b > /proc/sysrq-trigger 2>/dev/null && echo sysrq-writable
            grep -c ' /proc/sys ' /proc/self/mounts
            """])
        s.linux?.maskedPaths = DefaultSpec.maskedPaths  // /proc/timer_list (a file), /proc/acpi (a directory)
        let r = try h.run(s, id: Harness.uniqueID("mask"))
        #expect(r.out == "0\n0\n1\n", "\(r.out) \(r.err)")
    }

    /// runc's `tmpcopyup` (podman uses it): a fresh, writable tmpfs that starts with a copy.
    @Test func tmpcopyupKeepsTheDirectoryContents() throws {
        let h = try Harness(); defer { h.cleanup() }
        var s = Harness.spec(["sh", "-c", "cat /etc/hostname; readlink /etc/link; ls /etc/sub; echo new > /etc/new && cat /etc/new; grep -c ' /etc ' /proc/self/mounts"])
        try Files.mkdirAll(h.bundle + "/rootfs/etc/sub/deeper")
        symlink("hostname", h.bundle + "/rootfs/etc/link")
        s.mounts?.append(Mount(destination: "/etc", type: "tmpfs", source: "tmpfs", options: ["rw", "nosuid", "tmpcopyup"]))
        let r = try h.run(s, id: Harness.uniqueID("copyup"))
        #expect(r.out == "brig-rootfs\nhostname\ndeeper\nnew\n1\n", "\(r.err)")
        #expect(!Files.exists(h.bundle + "/rootfs/etc/new"), "the write went to the rootfs, not the tmpfs")
    }

    @Test func bindMountsWithOptions() throws {
        let h = try Harness(); defer { h.cleanup() }
        let src = h.dir + "/shared"
        try Files.mkdirAll(src)
        try Files.write(src + "/hello", "from host\n", flags: O_WRONLY | O_CREAT | O_TRUNC)
        var s = Harness.spec(["sh", "-c", "cat /data/hello; touch /data/new 2>/dev/null || echo ro; cat /one/hello; touch /rw/new && echo rw"])
        s.mounts?.append(Mount(destination: "/data", type: "bind", source: src, options: ["rbind", "ro", "nosuid", "nodev"]))
        s.mounts?.append(Mount(destination: "/one", source: src, options: ["bind"]))
        s.mounts?.append(Mount(destination: "/rw", type: "none", source: src, options: ["bind", "rw", "private"]))
        let r = try h.run(s, id: Harness.uniqueID("bind"))
        #expect(r.out == "from host\nro\nfrom host\nrw\n", "\(r.err)")
        #expect(Files.exists(src + "/new"))
    }

    /// A destination that is a symlink pointing outside the rootfs must resolve inside it.
    @Test func symlinkedDestinationStaysInsideRootfs() throws {
        let h = try Harness(); defer { h.cleanup() }
        let outside = h.dir + "/outside"
        try Files.mkdirAll(outside)
        // rootfs/evil -> <outside> (absolute host path) and rootfs/up -> ../../.. (climbs out).
        #expect(symlink(outside, h.bundle + "/rootfs/evil") == 0)
        #expect(symlink("../../../../../..", h.bundle + "/rootfs/up") == 0)
        // Inside, both land below the container's own root, at the path the links name there.
        var s = Harness.spec(["sh", "-c", "awk '{print $5}' /proc/self/mountinfo | grep '^\(outside)'"])
        s.mounts?.append(Mount(destination: "/evil", type: "tmpfs", source: "tmpfs"))
        s.mounts?.append(Mount(destination: "/up" + outside + "/sub", type: "tmpfs", source: "tmpfs"))
        let r = try h.run(s, id: Harness.uniqueID("symlink"))
        #expect(r.out == "\(outside)\n\(outside)/sub\n", "\(r.err)")
        // Nothing was created or mounted in the host directory the links point at.
        #expect((try Files.list(outside)).isEmpty)
        let mounts = try Files.readString("/proc/self/mountinfo")
        #expect(!mounts.contains(outside))
    }

    @Test func devicesAndDevSymlinks() throws {
        let h = try Harness(); defer { h.cleanup() }
        var s = Harness.spec(["sh", "-c", """
            for d in null zero full random urandom tty; do stat -c '%n %F %t:%T %a' /dev/$d; done
            stat -c '%n %F %t:%T %a %u:%g' /dev/mydev /dev/sub/loopish
            for l in fd stdin stdout stderr ptmx; do readlink /dev/$l; done
            echo hi > /dev/null && head -c 4 /dev/zero | wc -c
            """])
        s.linux?.devices = [Device(type: "c", path: "/dev/mydev", major: 1, minor: 3, fileMode: 0o600, uid: 1000, gid: 100),
                            Device(type: "b", path: "/dev/sub/loopish", major: 7, minor: 200, fileMode: 0o640, uid: 0, gid: 0)]
        let r = try h.run(s, id: Harness.uniqueID("dev"))
        let want = """
            /dev/null character special file 1:3 666
            /dev/zero character special file 1:5 666
            /dev/full character special file 1:7 666
            /dev/random character special file 1:8 666
            /dev/urandom character special file 1:9 666
            /dev/tty character special file 5:0 666
            /dev/mydev character special file 1:3 600 1000:100
            /dev/sub/loopish block special file 7:c8 640 0:0
            /proc/self/fd
            /proc/self/fd/0
            /proc/self/fd/1
            /proc/self/fd/2
            pts/ptmx
            4

            """
        #expect(r.out == want, "\(r.err)")
    }

    @Test func sysctlAndCgroupMount() throws {
        let h = try Harness(); defer { h.cleanup() }
        var s = Harness.spec(["sh", "-c", "cat /proc/sys/kernel/shmmni /proc/sys/net/ipv4/ip_forward; ls /sys/fs/cgroup | grep -c memory; touch /sys/fs/cgroup/memory/x 2>/dev/null || echo cg-ro"])
        s.linux?.sysctl = ["kernel.shmmni": "1234", "net.ipv4.ip_forward": "1"]
        let r = try h.run(s, id: Harness.uniqueID("sysctl"))
        #expect(r.out == "1234\n1\n1\ncg-ro\n", "\(r.err)")
        #expect((try Files.readString("/proc/sys/kernel/shmmni")) != "1234\n")
    }

    @Test func noPivotAndRootfsPropagation() throws {
        let h = try Harness(); defer { h.cleanup() }
        var s = Harness.spec(["sh", "-c", "ls /bin/busybox && grep -c ' / ' /proc/self/mountinfo"])
        s.linux?.rootfsPropagation = "rprivate"
        try h.write(s)
        let id = Harness.uniqueID("nopivot")
        let r = h.brig(["run", "--no-pivot", "--bundle", h.bundle, id])
        #expect(r.code == 0, "\(r.err)")
        #expect(r.out.hasPrefix("/bin/busybox\n"))
        h.assertClean(id)
    }

    /// `rootfsPropagation: shared` makes / shared, and pivot_root refuses a new root whose parent
    /// mount is shared: the mount the rootfs is on is made private first (as runc does).
    @Test(arguments: ["shared", "rshared"])
    func sharedRootfsPropagationPivots(_ propagation: String) throws {
        let h = try Harness(); defer { h.cleanup() }
        var s = Harness.spec(["sh", "-c", "echo in"])
        s.linux?.rootfsPropagation = propagation
        let r = try h.run(s, id: Harness.uniqueID("shprop"))
        #expect(r.code == 0 && r.out.hasPrefix("in\n"), "\(r.err)")
    }
}
