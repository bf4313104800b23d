import BrigCgroups
import Glibc
import Testing

/// Real cgroups on this machine. Enabled only as root on a host with v1 hierarchies (the
/// reason is printed when disabled).
@Suite(.serialized) struct RootTests {
    /// Runs `sh -c script` in its own process group (so that it can be killed as one).
    func spawn(_ script: String) throws -> pid_t {
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup("sh"), strdup("-c"), strdup(script), nil]
        defer { argv.forEach { free($0) } }
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attr, 0)
        let rc = posix_spawnp(&pid, "sh", nil, &attr, argv, environ)
        try #require(rc == 0, "posix_spawnp sh: \(rc)")
        return pid
    }

    /// A shell that, once moved into the cgroup, allocates ~4 MB (so it is charged there:
    /// v1 does not move existing charges) and then sleeps.
    func spawnWorker() throws -> pid_t {
        try spawn(#"sleep 0.3; v=$(head -c 4000000 /dev/zero | tr '\0' a); sleep 60"#)
    }

    /// A fresh directory on the cgroup2 mount, removed by the caller.
    func scratchCgroup2(_ name: String) throws -> String {
        let scratch = try #require(try CgroupLayout.current().unifiedMount) + "/\(name)-\(getpid())"
        try #require(mkdir(scratch, 0o755) == 0, "mkdir \(scratch): errno \(errno)")
        return scratch
    }

    func reap(_ pid: pid_t) {
        kill(-pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
    }

    @Test(.enabled(if: rootV1Enabled(), "needs root and cgroup v1 memory+freezer hierarchies"))
    func realCgroupLifecycle() throws {
        let name = "/brig-test-\(getpid())/ctr"
        let m = try makeCgroupManager(cgroupsPath: name, containerID: "t", systemd: false)
        #expect(m.mode != .unified)
        try m.create()
        var child: pid_t = 0
        defer {
            if child > 0 { reap(child) }
            try? m.destroy()
        }
        let dirs = m.state.paths
        func dir(_ c: String) throws -> CgroupDirectory {
            let key = try #require(dirs.keys.first { $0.split(separator: ",").contains(Substring(c)) }, "no \(c) hierarchy")
            return CgroupDirectory(dirs[key]!)
        }
        for path in dirs.values { #expect(CgroupDirectory(path).isPresent, "\(path) not created") }

        try m.apply(try resources(#"""
            {"memory":{"limit":67108864},"pids":{"limit":32},
             "cpu":{"shares":512,"quota":50000,"period":100000},
             "devices":[{"allow":false,"access":"rwm"}]}
            """#))
        #expect(try dir("memory").read("memory.limit_in_bytes") == "67108864")
        #expect(try dir("pids").read("pids.max") == "32")
        #expect(try dir("cpu").read("cpu.shares") == "512")
        #expect(try dir("cpu").read("cpu.cfs_quota_us") == "50000")
        #expect(try dir("cpu").read("cpu.cfs_period_us") == "100000")
        let list = try dir("devices").read("devices.list").split(separator: "\n").map(String.init)
        #expect(list.contains("c 1:3 rwm") && list.contains("c 136:* rwm") && !list.contains("a *:* rwm"), "devices.list: \(list)")

        child = try spawnWorker()
        try m.addProcess(child)
        #expect(try m.pids().contains(child))
        #expect(try dir("memory").read("cgroup.procs").split(separator: "\n").first == Substring(String(child)))

        try m.freeze()
        #expect(try m.isFrozen())
        #expect(try dir("freezer").read("freezer.state") == "FROZEN")
        try m.thaw()
        #expect(try !m.isFrozen())
        #expect(try dir("freezer").read("freezer.state") == "THAWED")

        // Wait for the worker's allocation to be charged here.
        var usage: UInt64 = 0
        for _ in 0..<100 where usage < 2_000_000 {
            usleep(50_000)
            usage = try dir("memory").readUInt("memory.usage_in_bytes")
        }
        try #require(usage >= 2_000_000, "worker memory not charged to the cgroup (usage \(usage))")
        // checkBeforeUpdate against real usage leaves the limit untouched.
        expectCgroupError("below current usage") {
            try m.update(try resources(#"{"memory":{"limit":\#(usage / 2),"checkBeforeUpdate":true}}"#))
        }
        #expect(try dir("memory").read("memory.limit_in_bytes") == "67108864")
        // Without the check the kernel refuses (anonymous memory and no swap): EBUSY, named.
        if ((try? CgroupDirectory("/proc").read("swaps")) ?? "").split(separator: "\n").count <= 1 {
            expectCgroupError("linux.resources.memory.limit", "EBUSY", "current usage") {
                try m.update(try resources(#"{"memory":{"limit":65536}}"#))
            }
            #expect(try dir("memory").read("memory.limit_in_bytes") == "67108864")
        } else {
            print("root test: EBUSY check skipped: swap is enabled, the kernel may swap instead of refusing")
        }
        try m.update(try resources(#"{"pids":{"limit":64},"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":10,"minor":229,"access":"rw"}]}"#))
        let updated = try dir("devices").read("devices.list").split(separator: "\n").map(String.init)
        #expect(updated.contains("c 10:229 rw") && updated.contains("c 1:3 rwm") && !updated.contains("a *:* rwm"), "devices.list: \(updated)")
        #expect(try dir("pids").read("pids.max") == "64")

        let s = try m.stats()
        #expect(s.pids.current >= 1 && s.pids.limit == 64)
        #expect(s.memory.usage.limit == 67108864)
        #expect(try m.oomKillCount() == 0)

        reap(child)
        child = 0
        // The worker's children were reparented; wait until the cgroup is empty.
        var left = try m.pids()
        for _ in 0..<100 where !left.isEmpty {
            usleep(50_000)
            left = try m.pids()
        }
        #expect(left.isEmpty, "processes still in the cgroup: \(left)")
        try m.destroy()
        for path in dirs.values {
            #expect(!CgroupDirectory(path).isPresent, "\(path) left behind")
            let parent = String(path.dropLast("/ctr".count))
            #expect(!CgroupDirectory(parent).isPresent, "created parent \(parent) left behind")
        }
        #expect(m.state.created.isEmpty, "left: \(m.state.created)")
    }

    @Test(.enabled(if: rootV1Enabled(), "needs root and cgroup v1 hierarchies"))
    func relativePathLandsUnderOwnCgroup() throws {
        let layout = try CgroupLayout.current()
        let m = try makeCgroupManager(cgroupsPath: "", containerID: "brig-rel-\(getpid())", systemd: false)
        try m.create()
        defer { try? m.destroy() }
        let memory = try #require(layout.hierarchy(for: "memory"))
        let own = memory.ownPath == "/" ? "" : memory.ownPath
        #expect(m.state.paths[memory.controllers.joined(separator: ",")] == memory.mountPoint + own + "/brig-rel-\(getpid())")
        try m.destroy()
        #expect(m.state.paths.values.allSatisfy { !CgroupDirectory($0).isPresent })
    }

    @Test(.enabled(if: rootUnifiedScratchEnabled(), "needs root and a cgroup2 mount"))
    func devicesProgramLoadsAndAttachesOnCgroup2() throws {
        let scratch = try scratchCgroup2("brig-bpf-test")
        defer { rmdir(scratch) }
        let d = CgroupDirectory(scratch)
        try V2Devices.apply(try DeviceRule.effective([]), d)
        let first = try V2Devices.attachedPrograms(path: scratch)
        #expect(first.count == 1)
        // Update replaces the program rather than stacking another.
        try V2Devices.apply(try DeviceRule.effective(try resources(#"{"devices":[{"allow":true,"type":"c","major":10,"minor":229,"access":"rw"}]}"#).devices!), d)
        let second = try V2Devices.attachedPrograms(path: scratch)
        #expect(second.count == 1 && second != first, "before \(first) after \(second)")
        let fd = try V2Devices.load(try DeviceProgram.generate([DeviceRule(allow: true, .all, nil, nil)]))
        #expect(fd >= 0)
        close(fd)
    }

    @Test(.enabled(if: rootUnifiedScratchEnabled(), "needs root and a cgroup2 mount"))
    func devicesProgramIsEnforcedByTheKernel() throws {
        let scratch = try scratchCgroup2("brig-bpf-enforce")
        defer { rmdir(scratch) }
        // Only /dev/zero (1:5) may be opened.
        try V2Devices.apply([DeviceRule(allow: false, .all, nil, nil), DeviceRule(allow: true, .char, 1, 5)], CgroupDirectory(scratch))
        let out = "/tmp/brig-bpf-enforce-\(getpid())"
        defer { unlink(out) }
        let child = try spawn("""
            sleep 0.3
            if head -c 1 /dev/zero >/dev/zero; then echo zero-ok; else echo zero-denied; fi > \(out)
            if head -c 1 /dev/null 2>/dev/zero; then echo null-ok; else echo null-denied; fi >> \(out)
            """)
        try CgroupDirectory(scratch).write("cgroup.procs", String(child))
        var status: Int32 = 0
        waitpid(child, &status, 0)
        let result = (try? CgroupDirectory("/tmp").read(String(out.dropFirst(5)))) ?? "<no output>"
        #expect(result == "zero-ok\nnull-denied", "got \(result.debugDescription)")
    }
}
