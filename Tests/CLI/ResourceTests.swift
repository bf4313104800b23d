import BrigLinux
import BrigOCI
import FoundationEssentials
import Glibc
import Testing

/// cgroup resources and the verbs engines use on running containers, on this host's real
/// hierarchies (hybrid: limits through v1).
@Suite("cgroup resources", .enabled(if: Harness.isRoot, "needs root"))
struct ResourceTests {
    func detached(_ h: Harness, _ spec: Spec, _ prefix: String) throws -> (String, ContainerState) {
        try h.write(spec)
        let id = Harness.uniqueID(prefix)
        let r = h.brig(["run", "-d", "--bundle", h.bundle, id])
        #expect(r.code == 0, "\(r.err)")
        let st = try JSONDecoder().decode(ContainerState.self, from: Data(h.brig(["state", id]).out.utf8))
        return (id, st)
    }

    func hostCgroup(_ pid: Int32, _ controller: String) throws -> String {
        for line in try Files.readString("/proc/\(pid)/cgroup").split(separator: "\n") {
            let f = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            if f.count == 3, f[1].split(separator: ",").contains(Substring(controller)) {
                for m in ["/sys/fs/cgroup/\(controller)", "/sys/fs/cgroup/cpu,cpuacct"] where Files.exists(m) {
                    return m + f[2]
                }
            }
        }
        throw HarnessError("no \(controller) cgroup for \(pid)")
    }

    @Test func memoryLimitOOMKillsAndEventsReportIt() throws {
        let h = try Harness(); defer { h.cleanup() }
        var s = Harness.spec(["sleep", "1000"])
        s.mounts?.append(Mount(destination: "/big", type: "tmpfs", source: "tmpfs", options: ["size=256m"]))
        s.linux?.resources = Resources()
        s.linux?.resources?.memory = Resources.Memory()
        s.linux?.resources?.memory?.limit = 32 << 20
        let (id, st) = try detached(h, s, "mem")
        #expect(try Files.readString(try hostCgroup(st.pid, "memory") + "/memory.limit_in_bytes") == "\(32 << 20)\n")
        // Stream events while a process blows the limit by filling a tmpfs (charged to the cgroup).
        let (r, w) = try Files.pipe()
        var o = Spawn.Options(path: Harness.binary, args: [Harness.binary, "--root", h.root, "events", "--interval", "100ms", id], env: [])
        o.fds = [(w, 1)]
        let events = try Spawn.spawn(o)
        close(w)
        usleep(300_000)
        let fill = h.brig(["exec", id, "dd", "if=/dev/zero", "of=/big/x", "bs=1M", "count=64"])
        #expect(fill.code == 137, "dd should be OOM-killed: \(fill.code) \(fill.err)")
        usleep(500_000)
        kill(events, SIGTERM)
        _ = try Spawn.wait(events)
        let lines = String(decoding: try Files.read(fd: r), as: UTF8.self)
        close(r)
        #expect(lines.contains("\"type\":\"oom\""), "\(lines.prefix(500))")
        #expect(lines.contains("\"type\":\"stats\""))
        let stats = h.brig(["events", "--stats", id])
        #expect(stats.out.contains("\"failcnt\""))
        #expect(h.brig(["delete", "--force", id]).code == 0)
        h.assertClean(id)
    }

    @Test func pidsLimitMakesForkFail() throws {
        let h = try Harness(); defer { h.cleanup() }
        var s = Harness.spec(["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 5 & done; wait; echo end"])
        s.linux?.resources = Resources()
        s.linux?.resources?.pids = .init(limit: 4)
        let id = Harness.uniqueID("pids")
        let r = try h.run(s, id: id)
        #expect(r.err.contains("can't fork") || r.err.contains("Resource temporarily unavailable"), "\(r.err)")
        h.assertClean(id)
    }

    @Test func cpuQuotaVisibleInside() throws {
        let h = try Harness(); defer { h.cleanup() }
        var s = Harness.spec(["sh", "-c", "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us /sys/fs/cgroup/cpu/cpu.shares"])
        s.linux?.resources = Resources()
        s.linux?.resources?.cpu = Resources.CPU()
        s.linux?.resources?.cpu?.quota = 25000
        s.linux?.resources?.cpu?.period = 100000
        s.linux?.resources?.cpu?.shares = 512
        let r = try h.run(s, id: Harness.uniqueID("cpu"))
        #expect(r.out == "25000\n100000\n512\n", "\(r.err)")
    }

    @Test func deviceDenyIsEnforced() throws {
        let h = try Harness(); defer { h.cleanup() }
        // /dev/fuse (10:229) is not in the default allowlist; opening it needs only the cgroup's consent.
        var s = Harness.spec(["sh", "-c", "(exec 3<> /dev/mydev) 2>/dev/null && echo read-ok || echo denied; echo x > /dev/null && echo null-ok"])
        s.linux?.devices = [Device(type: "c", path: "/dev/mydev", major: 10, minor: 229, fileMode: 0o666)]
        s.linux?.resources = Resources()
        s.linux?.resources?.devices = [Resources.DeviceCgroupRule(allow: false, access: "rwm")]
        let r = try h.run(s, id: Harness.uniqueID("devdeny"))
        #expect(r.out == "denied\nnull-ok\n", "\(r.err)")
        s.linux?.resources?.devices?.append(Resources.DeviceCgroupRule(allow: true, type: "c", major: 10, minor: 229, access: "rw"))
        #expect(try h.run(s, id: Harness.uniqueID("devallow")).out == "read-ok\nnull-ok\n")
    }

    @Test func updatePausePsAndKillAll() throws {
        let h = try Harness(); defer { h.cleanup() }
        var s = Harness.spec(["sh", "-c", "sleep 1000 & sleep 1000 & i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.02; done"])
        s.linux?.resources = Resources()
        s.linux?.resources?.memory = Resources.Memory()
        s.linux?.resources?.memory?.limit = 64 << 20
        let (id, st) = try detached(h, s, "verbs")
        let memDir = try hostCgroup(st.pid, "memory")
        #expect(h.brig(["update", "--memory", "128m", "--pids-limit", "50", id]).code == 0)
        #expect(try Files.readString(memDir + "/memory.limit_in_bytes") == "\(128 << 20)\n")
        #expect(try Files.readString(try hostCgroup(st.pid, "pids") + "/pids.max") == "50\n")
        #expect(h.brig(["update", "--memory", "lots", id]).err.contains("--memory: invalid size"))
        // ps lists the container's processes (init and the two sleeps at least).
        usleep(200_000)
        let pids = try JSONDecoder().decode([Int32].self, from: Data(h.brig(["ps", "--format", "json", id]).out.utf8))
        #expect(pids.contains(st.pid) && pids.count >= 3, "\(pids)")
        #expect(h.brig(["ps", id]).out.contains("sleep 1000"))
        // pause freezes: the counter stops advancing; resume thaws it.
        let counter = "/proc/\(st.pid)/root/tmp/count"
        #expect(h.brig(["pause", id]).code == 0)
        #expect(h.brig(["state", id]).out.contains("\"paused\""))
        let a = try Files.readString(counter)
        usleep(300_000)
        #expect(try Files.readString(counter) == a, "counter advanced while paused")
        #expect(h.brig(["pause", id]).err.contains("cannot pause"))
        #expect(h.brig(["resume", id]).code == 0)
        usleep(300_000)
        #expect(try Files.readString(counter) != a, "counter did not advance after resume")
        // kill --all reaches every process, not only init.
        let sleeps = pids.filter { $0 != st.pid }
        #expect(h.brig(["kill", "--all", id, "KILL"]).code == 0)
        usleep(300_000)
        for p in sleeps { #expect(ProcStat.read(pid: p) == nil || ProcStat.read(pid: p)?.state == "Z") }
        #expect(h.brig(["delete", id]).code == 0)
        h.assertClean(id)
    }

    /// A pod: the second container names the sandbox's populated cgroup; it joins it without
    /// changing its limits, and deleting it leaves the sandbox's cgroup in place.
    @Test func populatedCgroupIsJoinedNotClobbered() throws {
        let h = try Harness(); defer { h.cleanup() }
        let pod = "/brigpod-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        var a = Harness.spec(["sleep", "1000"])
        a.linux?.cgroupsPath = pod
        a.linux?.resources = Resources()
        a.linux?.resources?.memory = Resources.Memory()
        a.linux?.resources?.memory?.limit = 64 << 20
        let (sandbox, st) = try detached(h, a, "sandbox")
        let memDir = try hostCgroup(st.pid, "memory")
        #expect(memDir.hasSuffix(pod))
        var b = a
        b.linux?.resources?.memory?.limit = 32 << 20
        let (member, _) = try detached(h, b, "member")
        #expect(try Files.readString(memDir + "/memory.limit_in_bytes") == "\(64 << 20)\n", "the joined cgroup's limit changed")
        #expect(h.brig(["delete", "--force", member]).code == 0)
        #expect(Files.exists(memDir), "deleting the member removed the pod's cgroup")
        #expect(ProcStat.read(pid: st.pid)?.state != "Z")
        #expect(h.brig(["delete", "--force", sandbox]).code == 0)
        #expect(!Files.exists(memDir))
    }

    @Test func resourceErrorsNameTheFieldAndLeaveNothing() throws {
        let h = try Harness(); defer { h.cleanup() }
        var s = Harness.spec(["true"])
        s.linux?.resources = Resources()
        s.linux?.resources?.unified = ["memory.max": "1G"]
        try h.write(s)
        let id = Harness.uniqueID("badres")
        let r = h.brig(["create", "--bundle", h.bundle, id])
        #expect(r.code != 0)
        #expect(r.err.contains("linux.resources.unified"), "\(r.err)")
        h.assertClean(id)
        #expect(h.brig(["create", "--bundle", h.bundle, id], global: ["--systemd-cgroup"]).err.contains("systemd is not running"))
        h.assertClean(id)
    }
}
