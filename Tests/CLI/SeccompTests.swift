import BrigLinux
import BrigOCI
import CBrigSeccompShim
import CBrigShim
import FoundationEssentials
import Glibc
import Testing

@Suite("seccomp through the CLI", .enabled(if: Harness.isRoot, "needs root"))
struct SeccompCLITests {
    func profile(_ rules: [SeccompSyscall], defaultAction: String = "SCMP_ACT_ALLOW") -> Seccomp {
        Seccomp(defaultAction: defaultAction, defaultErrnoRet: nil, architectures: ["SCMP_ARCH_X86_64"], flags: nil,
                listenerPath: nil, listenerMetadata: nil, syscalls: rules)
    }

    @Test(arguments: [true, false])
    func deniedSyscallReturnsConfiguredErrno(noNewPrivileges: Bool) throws {
        let h = try Harness(); defer { h.cleanup() }
        var s = Harness.spec(["sh", "-c", "mkdir /tmp/d; echo rc=$?; grep Seccomp: /proc/self/status"])
        s.process?.noNewPrivileges = noNewPrivileges
        s.linux?.seccomp = profile([SeccompSyscall(names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 13, args: nil)])
        let r = try h.run(s, id: Harness.uniqueID("scerr"))
        #expect(r.out.contains("rc=1") && r.err.contains("Permission denied"), "\(r.out) \(r.err)")
        #expect(r.out.contains("Seccomp:\t2"))
    }

    /// A profile without faccessat2 and close_range (Docker-style allowlists older than them, or
    /// a defaultAction of ENOSYS for unknown syscalls): with noNewPrivileges false the filter is
    /// loaded before the executable is looked up, with it true just before execve. Either way the
    /// container starts through a $PATH lookup (runc: access(2) when faccessat2 is refused) and gets
    /// only its stdio (brig init's own fds, inherited across its re-exec, marked close-on-exec before
    /// the filter: a leaked directory fd is CVE-2024-21626).
    @Test(arguments: [(false, EPERM), (false, ENOSYS), (true, EPERM), (true, ENOSYS)])
    func filterWithoutFaccessat2OrCloseRange(noNewPrivileges: Bool, errno: Int32) throws {
        let h = try Harness(); defer { h.cleanup() }
        var s = Harness.spec(["ls", "/proc/self/fd"])
        s.process?.noNewPrivileges = noNewPrivileges
        s.linux?.seccomp = profile([SeccompSyscall(names: ["faccessat2", "close_range"], action: "SCMP_ACT_ERRNO",
                                                   errnoRet: UInt32(errno), args: nil)])
        let r = try h.run(s, id: Harness.uniqueID("scfd"))
        #expect(r.code == 0, "\(r.err)")
        #expect(r.out == "0\n1\n2\n3\n", "the container's fds (ls holds 3): \(r.out) \(r.err)")
    }

    @Test func killActionKills() throws {
        let h = try Harness(); defer { h.cleanup() }
        var s = Harness.spec(["sh", "-c", "echo before; mkdir /tmp/k; echo status=$?; exec mkdir /tmp/k"])
        s.linux?.namespaces?.removeAll { $0.type == "pid" }  // so the shell is not a pid-namespace init
        s.linux?.seccomp = profile([SeccompSyscall(names: ["mkdir", "mkdirat"], action: "SCMP_ACT_KILL_PROCESS", errnoRet: nil, args: nil)])
        let r = try h.run(s, id: Harness.uniqueID("sckill"))
        // The child running mkdir dies of SIGSYS; so does the container's own process after exec.
        #expect(r.out == "before\nstatus=\(128 + SIGSYS)\n")
        #expect(r.code == 128 + SIGSYS, "\(r.code)")
    }

    @Test func argumentConditions() throws {
        let h = try Harness(); defer { h.cleanup() }
        // busybox linux32 calls personality(PER_LINUX32 = 8), linux64 personality(PER_LINUX = 0).
        var s = Harness.spec(["sh", "-c", "linux32 uname -m 2>/dev/null || echo denied32; linux64 uname -m"])
        #expect(try h.run(s, id: Harness.uniqueID("scctl")).out == "i686\nx86_64\n", "control run without a filter")
        s.linux?.seccomp = profile([SeccompSyscall(names: ["personality"], action: "SCMP_ACT_ERRNO", errnoRet: 1,
                                                   args: [SeccompArg(index: 0, value: 8, op: "SCMP_CMP_EQ")])])
        let r = try h.run(s, id: Harness.uniqueID("scargs"))
        #expect(r.out == "denied32\nx86_64\n", "\(r.out) \(r.err)")
    }

    @Test func notifyReachesTheListener() throws {
        let h = try Harness(); defer { h.cleanup() }
        let sockPath = h.dir + "/agent.sock"
        let listener = try UnixSocket.listen(sockPath)
        defer { close(listener) }
        var s = Harness.spec(["sh", "-c", "mkdir /tmp/n 2>/dev/null; echo $? > /tmp/rc; sleep 1000"])
        var p = profile([SeccompSyscall(names: ["mkdir", "mkdirat"], action: "SCMP_ACT_NOTIFY", errnoRet: nil, args: nil)])
        p.listenerPath = sockPath
        p.listenerMetadata = "meta-1"
        s.linux?.seccomp = p
        try h.write(s)
        let id = Harness.uniqueID("scnotify")
        #expect(h.brig(["run", "-d", "--bundle", h.bundle, id]).code == 0)
        let conn = accept(listener, nil, nil)
        var buf = [UInt8](repeating: 0, count: 8192)
        var fd: Int32 = -1
        let n = brig_recv_fd(conn, &fd, &buf, buf.count)
        close(conn)
        #expect(n > 0 && fd >= 0)
        let text = String(decoding: buf[0..<max(0, n)], as: UTF8.self)
        #expect(text.contains("\"seccompFd\"") && text.contains("meta-1") && text.contains(id), "\(text)")
        var reqID: UInt64 = 0, pid: UInt32 = 0, nr: Int32 = 0, arg0: UInt64 = 0
        #expect(brig_sc_notif_recv(fd, &reqID, &pid, &nr, &arg0) == 0)
        #expect(nr == 83 || nr == 258, "mkdir or mkdirat, got \(nr)")
        #expect(brig_sc_notif_send(fd, reqID, -EROFS, 0, 0) == 0)
        close(fd)
        let st = try JSONDecoder().decode(ContainerState.self, from: Data(h.brig(["state", id]).out.utf8))
        var rc = ""
        for _ in 0..<100 where rc.isEmpty { usleep(20_000); rc = (try? Files.readString("/proc/\(st.pid)/root/tmp/rc")) ?? "" }
        #expect(rc == "1\n", "mkdir should fail with the listener's EROFS")
        #expect(h.brig(["delete", "--force", id]).code == 0)
        h.assertClean(id)
    }

    @Test func badProfilesFailBeforeAnythingRuns() throws {
        let h = try Harness(); defer { h.cleanup() }
        let id = Harness.uniqueID("scbad")
        for (p, field) in [
            (profile([], defaultAction: "SCMP_ACT_BOGUS"), "linux.seccomp.defaultAction"),
            (profile([SeccompSyscall(names: ["read"], action: "SCMP_ACT_ERRNO", errnoRet: nil,
                                     args: [SeccompArg(index: 0, value: 1, valueTwo: nil, op: "SCMP_CMP_WHAT")])]), "linux.seccomp.syscalls[0].args[0].op"),
            (profile([SeccompSyscall(names: ["read"], action: "SCMP_ACT_NOTIFY", errnoRet: nil, args: nil)]), "linux.seccomp"),
        ] {
            var s = Harness.spec(["true"])
            s.linux?.seccomp = p
            try h.write(s)
            let r = h.brig(["create", "--bundle", h.bundle, id])
            #expect(r.code != 0)
            #expect(r.err.contains(field), "\(r.err)")
            h.assertClean(id)
        }
    }
}
