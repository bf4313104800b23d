import BrigCgroups
import Glibc
import Testing

/// Real cgroups on this machine. Enabled only as root on a host with v1 hierarchies (the
/// reason is printed when disabled).
@Suite(.serialized) struct RootTests {
    func spawnSleep() throws -> pid_t {
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup("sleep"), strdup("60"), nil]
        defer { argv.forEach { free($0) } }
        let rc = posix_spawnp(&pid, "sleep", nil, nil, argv, environ)
        try #require(rc == 0, "posix_spawnp sleep: \(rc)")
        return pid
    }

    func reap(_ pid: pid_t) {
        kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
    }

    func processState(_ pid: pid_t) -> String {
        let status = (try? CgroupDirectory("/proc/\(pid)").read("status")) ?? ""
        return status.split(separator: "\n").first { $0.hasPrefix("State:") }.map(String.init) ?? ""
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

        child = try spawnSleep()
        try m.addProcess(child)
        #expect(try m.pids() == [child])
        #expect(try dir("memory").read("cgroup.procs") == String(child))

        try m.freeze()
        #expect(try m.isFrozen())
        #expect(try dir("freezer").read("freezer.state") == "FROZEN")
        try m.thaw()
        #expect(try !m.isFrozen())
        #expect(try dir("freezer").read("freezer.state") == "THAWED")

        // checkBeforeUpdate against real usage leaves the limit untouched.
        let usage = try dir("memory").readUInt("memory.usage_in_bytes")
        if usage > 0 {
            expectCgroupError("below current usage") {
                try m.update(try resources(#"{"memory":{"limit":\#(max(usage / 2, 1)),"checkBeforeUpdate":true}}"#))
            }
            #expect(try dir("memory").read("memory.limit_in_bytes") == "67108864")
        }
        try m.update(try resources(#"{"pids":{"limit":64},"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":10,"minor":229,"access":"rw"}]}"#))
        let updated = try dir("devices").read("devices.list").split(separator: "\n").map(String.init)
        #expect(updated.contains("c 10:229 rw") && updated.contains("c 1:3 rwm") && !updated.contains("a *:* rwm"), "devices.list: \(updated)")
        #expect(try dir("pids").read("pids.max") == "64")

        let s = try m.stats()
        #expect(s.pids.current == 1 && s.pids.limit == 64)
        #expect(s.memory.usage.limit == 67108864)
        #expect(try m.oomKillCount() == 0)

        reap(child)
        child = 0
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
        let layout = try CgroupLayout.current()
        let scratch = try #require(layout.unifiedMount) + "/brig-bpf-test-\(getpid())"
        try #require(mkdir(scratch, 0o755) == 0, "mkdir \(scratch): errno \(errno)")
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
}
