import BrigLinux
import BrigOCI
import CBrigShim
import FoundationEssentials
import Glibc
import Testing

/// Regression tests for known runtime escapes. Each would fail on a runtime without the
/// protection it names.
@Suite("escape resistance", .enabled(if: Harness.isRoot, "needs root"))
struct EscapeTests {
    /// CVE-2019-5736: a process that can reach /proc/<pid>/exe of the runtime's init (parked in
    /// the container) keeps an O_PATH handle, waits until the init execs the user program, then
    /// reopens the handle for writing to overwrite the runtime binary. brig's init runs from a
    /// read-only bind-mounted copy, so the reopen fails.
    @Test func runtimeBinaryCannotBeOverwrittenThroughProcExe() throws {
        let h = try Harness(); defer { h.cleanup() }
        try h.write(Harness.spec(["sleep", "1000"]))
        let id = Harness.uniqueID("cve5736")
        #expect(h.brig(["create", "--bundle", h.bundle, id]).code == 0)
        let st = try JSONDecoder().decode(ContainerState.self, from: Data(h.brig(["state", id]).out.utf8))
        let handle = open("/proc/\(st.pid)/exe", Int32(BRIG_O_PATH) | O_CLOEXEC)
        #expect(handle >= 0)
        defer { close(handle) }
        #expect(h.brig(["start", id]).code == 0)
        usleep(100_000)
        let w = open("/proc/self/fd/\(handle)", O_WRONLY | O_CLOEXEC)
        let err = errno
        if w >= 0 { close(w) }
        #expect(w < 0, "the binary the container's init ran from was writable")
        #expect(err == EROFS || err == ETXTBSY, "errno \(err)")
        _ = h.brig(["delete", "--force", id])
    }

    /// CVE-2024-21626: a leaked host directory fd plus cwd "/proc/self/fd/N" put the container's
    /// cwd outside its root. brig's init holds no directory fd at chdir time (every fd is
    /// O_CLOEXEC and the rootfs fds are closed), so every such cwd fails or stays inside.
    @Test func noHostFdLeaksThroughCwd() throws {
        let h = try Harness(); defer { h.cleanup() }
        for n in 3...12 {
            var s = Harness.spec(["sh", "-c", "pwd; ls /proc/self/fd | wc -l; cat ../../../../etc/hostname 2>&1 | head -1"])
            s.process?.cwd = "/proc/self/fd/\(n)"
            let id = Harness.uniqueID("cve21626")
            let r = try h.run(s, id: id)
            // Either the chdir fails at create, or the cwd resolves inside the container.
            if r.code == 0 {
                #expect(!r.out.contains(try Files.readString("/etc/hostname").trimmingWhitespace), "cwd escaped via fd \(n): \(r.out)")
            } else {
                #expect(r.err.contains("/proc/"), "the failure should name the cwd path: \(r.err)")
            }
            h.assertClean(id)
        }
        // And the container itself sees only stdio (plus the fd ls opens).
        let r = try h.run(Harness.spec(["ls", "/proc/self/fd"]), id: Harness.uniqueID("fdlist"))
        #expect(r.out == "0\n1\n2\n3\n", "\(r.out)")
    }

    /// /proc and /sys writes through masked/read-only paths are blocked in the default spec.
    @Test func defaultSpecBlocksProcAndSysWrites() throws {
        let h = try Harness(); defer { h.cleanup() }
        let r = try h.run(Harness.spec(["sh", "-c", """
            echo 1 > /proc/sys/vm/drop_caches 2>/dev/null && echo sys-writable
            echo h > /proc/sysrq-trigger 2>/dev/null && echo sysrq-writable
            echo x > /sys/kernel/uevent_helper 2>/dev/null && echo sysfs-writable
            cat /proc/keys 2>/dev/null | wc -c
            echo done
            """]), id: Harness.uniqueID("procsys"))
        #expect(r.out == "0\ndone\n", "\(r.out)")
    }
}

@Suite("LSM handling", .enabled(if: Harness.isRoot, "needs root"))
struct LSMTests {
    /// A requested confinement that the host cannot apply is refused (as runc does), never
    /// dropped silently; nothing is left behind. Where the LSM is enabled it is applied instead,
    /// so this runs where neither is (this host; the VM test host has AppArmor).
    @Test(arguments: ["apparmor", "selinux"])
    func labelForADisabledLSMIsRefused(_ lsm: String) throws {
        let enabled = lsm == "apparmor"
            ? ((try? Files.readString("/sys/module/apparmor/parameters/enabled")) ?? "").hasPrefix("Y") && Files.exists("/sys/kernel/security/apparmor")
            : Files.exists("/sys/fs/selinux/enforce")
        try #require(!enabled, "\(lsm) is enabled on this host: the label would be applied")
        let h = try Harness(); defer { h.cleanup() }
        var s = Harness.spec(["true"])
        if lsm == "apparmor" { s.process?.apparmorProfile = "brig-default" }
        else { s.process?.selinuxLabel = "system_u:system_r:container_t:s0" }
        try h.write(s)
        let id = Harness.uniqueID("lsm")
        let r = h.brig(["run", "--bundle", h.bundle, id])
        #expect(r.code == 1, "\(r.err)")
        let field = lsm == "apparmor" ? "process.apparmorProfile \"brig-default\": AppArmor is not enabled"
                                      : "process.selinuxLabel \"system_u:system_r:container_t:s0\": SELinux is not enabled"
        #expect(r.err.contains(field), "\(r.err)")
        h.assertClean(id)
    }
}
