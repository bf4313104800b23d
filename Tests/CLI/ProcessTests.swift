import BrigLinux
import BrigOCI
import Glibc
import Testing

@Suite("process fields", .enabled(if: Harness.isRoot, "needs root"))
struct ProcessTests {
    func output(_ spec: Spec, _ prefix: String = "proc") throws -> Harness.Result {
        let h = try Harness(); defer { h.cleanup() }
        let id = Harness.uniqueID(prefix)
        let r = try h.run(spec, id: id)
        h.assertClean(id)
        return r
    }

    @Test func userGroupsAndUmask() throws {
        var s = Harness.spec(["sh", "-c", "id -u; id -g; id -G; umask; touch /tmp/f; stat -c %a /tmp/f"])
        s.process?.user = User(uid: 1000, gid: 100, umask: 0o027, additionalGids: [5, 1000])
        let r = try output(s)
        #expect(r.code == 0, "\(r.err)")
        #expect(r.out == "1000\n100\n100 5 1000\n0027\n640\n")
    }

    @Test func envCwdAndHome() throws {
        var s = Harness.spec(["sh", "-c", "echo $FOO; pwd; echo $HOME"])
        s.process?.env = ["PATH=/bin", "FOO=bar baz"]
        s.process?.cwd = "/new/dir"
        s.process?.user = User(uid: 1000, gid: 1000)
        let r = try output(s)
        #expect(r.out == "bar baz\n/new/dir\n/home/user\n", "\(r.err)")
    }

    @Test func rlimits() throws {
        var s = Harness.spec(["sh", "-c", "ulimit -n; ulimit -Hn; ulimit -c"])
        s.process?.rlimits = [Rlimit(type: "RLIMIT_NOFILE", hard: 512, soft: 256), Rlimit(type: "RLIMIT_CORE", hard: 0, soft: 0)]
        let r = try output(s)
        #expect(r.out == "256\n512\n0\n", "\(r.err)")
    }

    @Test func capabilitiesAllFiveSets() throws {
        var s = Harness.spec(["sh", "-c", "grep ^Cap /proc/self/status"])
        s.process?.user = User(uid: 1000, gid: 1000)
        // CAP_NET_BIND_SERVICE (10) ambient for a non-root user; CAP_KILL (5) bounding only.
        let nbs = ["CAP_NET_BIND_SERVICE"]
        s.process?.capabilities = Capabilities(bounding: ["CAP_KILL", "CAP_NET_BIND_SERVICE"], effective: nbs,
                                               inheritable: nbs, permitted: nbs, ambient: nbs)
        let r = try output(s)
        #expect(r.out.contains("CapInh:\t0000000000000400"), "\(r.out) \(r.err)")
        #expect(r.out.contains("CapPrm:\t0000000000000400"))
        #expect(r.out.contains("CapEff:\t0000000000000400"))
        #expect(r.out.contains("CapBnd:\t0000000000000420"))
        #expect(r.out.contains("CapAmb:\t0000000000000400"))
    }

    /// `runc spec`'s default (runc >= 1.1) lists ambient capabilities without an inheritable set;
    /// the kernel refuses to raise those, and runc runs the container anyway. So does brig, and
    /// --debug says which ones were not raised.
    @Test func ambientWithoutInheritableRunsAsRunc() throws {
        let h = try Harness(); defer { h.cleanup() }
        var s = Harness.spec(["sh", "-c", "grep ^CapAmb /proc/self/status"])
        let caps = ["CAP_KILL", "CAP_NET_BIND_SERVICE"]
        s.process?.capabilities = Capabilities(bounding: caps, effective: caps, inheritable: nil, permitted: caps, ambient: caps)
        try h.write(s)
        let r = h.brig(["run", "--bundle", h.bundle, Harness.uniqueID("amb")], global: ["--debug"])
        #expect(r.code == 0, "\(r.err)")
        #expect(r.out == "CapAmb:\t0000000000000000\n", "\(r.out)")
        #expect(r.err.contains("process.capabilities.ambient: CAP_KILL, CAP_NET_BIND_SERVICE not raised"), "\(r.err)")
    }

    @Test func noNewPrivilegesAndOomScoreAdj() throws {
        var s = Harness.spec(["sh", "-c", "grep NoNewPrivs /proc/self/status; cat /proc/self/oom_score_adj"])
        s.process?.noNewPrivileges = true
        s.process?.oomScoreAdj = 500
        let r = try output(s)
        #expect(r.out == "NoNewPrivs:\t1\n500\n", "\(r.err)")
        s.process?.noNewPrivileges = false
        #expect(try output(s).out.hasPrefix("NoNewPrivs:\t0\n"))
    }

    @Test func hostnameAndDomainname() throws {
        var s = Harness.spec(["sh", "-c", "hostname; cat /proc/sys/kernel/domainname"])
        s.hostname = "box1"
        s.domainname = "example.org"
        let r = try output(s)
        #expect(r.out == "box1\nexample.org\n", "\(r.err)")
    }

    @Test func sessionKeyring() throws {
        let h = try Harness(); defer { h.cleanup() }
        var s = Harness.spec(["cat", "/proc/keys"])
        s.linux?.maskedPaths?.removeAll { $0 == "/proc/keys" }
        try h.write(s)
        let id = Harness.uniqueID("keyring")
        let r = h.brig(["run", "--bundle", h.bundle, id])
        #expect(r.out.contains("_ses.\(id)"), "\(r.out) \(r.err)")
        // (The first run's keyring may still be listed until the kernel collects it: look for
        // this container's own name.)
        let id2 = Harness.uniqueID("nokeyring")
        let shared = h.brig(["run", "--no-new-keyring", "--bundle", h.bundle, id2])
        #expect(!shared.out.contains("_ses.\(id2)"), "\(shared.out)")
        #expect(shared.code == 0)
    }

    @Test func preserveFDsAndNoHostFDLeak() throws {
        let h = try Harness(); defer { h.cleanup() }
        try h.write(Harness.spec(["sh", "-c", "ls /proc/self/fd | sort -n | tr '\\n' ' '; cat <&3"]))
        let (r, w) = try Files.pipe()
        try Files.writeAll(fd: w, Array("via fd 3\n".utf8)); close(w)
        let id = Harness.uniqueID("fds")
        let res = Harness.exec([Harness.binary, "--root", h.root, "run", "--preserve-fds", "1", "--bundle", h.bundle, id],
                               extraFDs: [(r, 3)])
        close(r)
        // Only stdio, the preserved fd, and the fd `ls` itself opens on /proc/self/fd.
        #expect(res.out == "0 1 2 3 4 via fd 3\n", "\(res.err)")
        h.assertClean(id)
    }
}
