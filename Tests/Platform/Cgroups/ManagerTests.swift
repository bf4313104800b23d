import BrigCgroups
import FoundationEssentials
import Testing

@Suite struct ManagerTests {
    let fs = TempCgroupFS()
    let controllers = ["cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "pids", "blkio"]

    func v1(_ path: String = "/pod/c1") throws -> any CgroupManager {
        for c in controllers { fs.touch(c + "/cgroup.procs") }
        return try makeCgroupManager(cgroupsPath: path, containerID: "c1", systemd: false, layout: .v1(controllers), root: fs.root)
    }

    /// Fills a created v1 leaf with the control files the controllers write.
    func populate(_ m: any CgroupManager) {
        let files: [String: [String]] = [
            "memory": ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.usage_in_bytes"],
            "cpu": ["cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us"], "pids": ["pids.max"],
            "devices": ["devices.allow", "devices.deny"], "freezer": ["freezer.state"], "cpuset": ["cpuset.cpus", "cpuset.mems"],
        ]
        for (key, path) in m.state.paths {
            for f in (files[key] ?? []) + ["cgroup.procs"] { fs.touch(String(path.dropFirst(fs.root.count + 1)) + "/" + f, f == "memory.usage_in_bytes" ? "5000" : "") }
        }
    }

    @Test func v1CreateRecordsCreatedDirsAndDestroyRemovesOnlyThose() throws {
        let m = try v1()
        try m.create()
        #expect(m.mode == .legacy)
        for c in controllers {
            #expect(fs.exists("\(c)/pod/c1"))
        }
        #expect(m.state.created.contains(fs.root + "/memory/pod"))
        #expect(m.state.created.contains(fs.root + "/memory/pod/c1"))
        // Rebuilt from persisted JSON in a later process.
        let json = try JSONEncoder().encode(m.state)
        let again = makeCgroupManager(state: try JSONDecoder().decode(CgroupState.self, from: json))
        try again.destroy()
        for c in controllers {
            #expect(!fs.exists("\(c)/pod"))
            #expect(fs.exists(c))
        }
        try again.destroy()  // already gone: no error
    }

    @Test func destroyKeepsDirectoriesItDidNotCreate() throws {
        for c in controllers { _ = fs.cgroup("\(c)/pre/c1", [:]) }
        let m = try v1("/pre/c1")
        try m.create()
        #expect(m.state.created.isEmpty)
        try m.destroy()
        #expect(fs.exists("memory/pre/c1"))
        try m.destroy(force: true)
        #expect(!fs.exists("memory/pre/c1"))
        #expect(fs.exists("memory/pre"))
    }

    @Test func joiningAPopulatedSandboxDoesNotClobberIt() throws {
        for c in controllers { _ = fs.cgroup("\(c)/sandbox", ["cgroup.procs": "4242\n"]) }
        fs.touch("pids/sandbox/pids.max", "100")
        let m = try v1("/sandbox")
        #expect(try m.join() == true)
        try m.apply(try resources(#"{"pids":{"limit":5}}"#))
        #expect(fs.read("pids/sandbox/pids.max") == "100")
        try m.destroy()
        #expect(fs.exists("pids/sandbox"))
        // An empty existing cgroup is not a sandbox: limits apply.
        let fresh = try v1("/fresh")
        #expect(try fresh.join() == false)
    }

    /// A cgroupsPath populated in one hierarchy only: joined (left alone), but the directories
    /// create made in the other hierarchies are its own and go with delete.
    @Test func joiningAPartlyPopulatedCgroupRemovesWhatItCreated() throws {
        _ = fs.cgroup("memory/half", ["cgroup.procs": "4242\n"])
        let m = try v1("/half")
        #expect(try m.join() == true)
        #expect(fs.exists("pids/half"))
        try m.destroy()
        #expect(fs.exists("memory/half"))
        #expect(!fs.exists("pids/half"))
    }

    @Test func v1ApplyRoutesEachControllerToItsHierarchy() throws {
        let m = try v1()
        try m.create()
        populate(m)
        try m.apply(try resources(#"{"memory":{"limit":1048576},"cpu":{"shares":256,"cpus":"0"},"pids":{"limit":7},"devices":[]}"#))
        #expect(fs.read("memory/pod/c1/memory.limit_in_bytes") == "1048576")
        #expect(fs.read("cpu/pod/c1/cpu.shares") == "256")
        #expect(fs.read("cpuset/pod/c1/cpuset.cpus") == "0")
        #expect(fs.read("pids/pod/c1/pids.max") == "7")
        #expect(fs.read("devices/pod/c1/devices.deny") == "a *:* rwm")
        #expect(fs.read("devices/pod/c1/devices.allow") == "c 10:200 rwm")  // last of the default allowlist
        try m.addProcess(1234)
        #expect(fs.read("memory/pod/c1/cgroup.procs") == "1234")
        #expect(fs.read("freezer/pod/c1/cgroup.procs") == "1234")
    }

    @Test func v1RefusesBeforeWritingAnything() throws {
        let m = try v1()
        try m.create()
        populate(m)
        expectCgroupError("invalid configuration: linux.resources.unified", "cannot use unified on cgroup v1") {
            try m.update(try resources(#"{"pids":{"limit":9},"unified":{"memory.high":"1"}}"#))
        }
        expectCgroupError("linux.resources.hugepageLimits", "hugetlb") {
            try m.update(try resources(#"{"pids":{"limit":9},"hugepageLimits":[{"pageSize":"2MB","limit":1}]}"#))
        }
        expectCgroupError("linux.resources.memory.limit", "below current usage") {
            try m.update(try resources(#"{"pids":{"limit":9},"memory":{"limit":4096,"checkBeforeUpdate":true}}"#))
        }
        #expect(fs.read("pids/pod/c1/pids.max") == "")
        #expect(fs.read("memory/pod/c1/memory.limit_in_bytes") == "")
    }

    @Test func v1JoinRefusesAFrozenCgroupAndRemovesWhatItMade() throws {
        fs.touch("freezer/pod/c1/freezer.state", "FROZEN\n")
        let m = try v1()
        expectCgroupError("container's cgroup unexpectedly frozen: \(fs.root)/freezer/pod/c1 (\(fs.root)/freezer/pod/c1/freezer.state is FROZEN") {
            try m.join()
        }
        #expect(fs.exists("freezer/pod/c1"))
        #expect(!fs.exists("memory/pod") && !fs.exists("cpu/pod"))
        #expect(m.state.created.isEmpty)
        fs.touch("freezer/pod/c1/freezer.state", "THAWED\n")
        #expect(try m.join() == false)
    }

    @Test func v1FreezeAndThaw() throws {
        let m = try v1()
        try m.create()
        populate(m)
        try m.freeze()
        #expect(fs.read("freezer/pod/c1/freezer.state") == "FROZEN")
        #expect(try m.isFrozen())
        try m.thaw()
        #expect(fs.read("freezer/pod/c1/freezer.state") == "THAWED")
        #expect(try !m.isFrozen())
    }

    func v2(_ path: String = "/a/b") throws -> any CgroupManager {
        fs.touch("cgroup.controllers", "cpu memory pids")
        fs.touch("cgroup.subtree_control", "")
        fs.touch("cgroup.procs")
        let m = try makeCgroupManager(cgroupsPath: path, containerID: "x", systemd: false, layout: .unified(), root: fs.root)
        m.skipDevices = true
        return m
    }

    @Test func v2CreateEnablesControllersAndAppliesOnTheOneDirectory() throws {
        let m = try v2()
        try m.create()
        #expect(m.mode == .unified)
        #expect(fs.read("cgroup.subtree_control") == "+cpu +memory +pids")
        for f in ["memory.max", "memory.swap.max", "pids.max", "cpu.weight", "cpu.max"] { fs.touch("a/b/" + f) }
        try m.apply(try resources(#"{"memory":{"limit":2000,"swap":3000},"pids":{"limit":0},"cpu":{"shares":2,"quota":1000}}"#))
        #expect(fs.read("a/b/memory.max") == "2000")
        #expect(fs.read("a/b/memory.swap.max") == "1000")
        #expect(fs.read("a/b/pids.max") == "max")
        #expect(fs.read("a/b/cpu.weight") == "1")
        #expect(fs.read("a/b/cpu.max") == "1000")
        expectCgroupError("linux.resources.memory.swappiness") { try m.update(try resources(#"{"pids":{"limit":3},"memory":{"swappiness":1}}"#)) }
        #expect(fs.read("a/b/pids.max") == "max")
    }

    @Test func v2PidsAreRecursive() throws {
        let m = try v2()
        try m.create()
        fs.touch("a/b/cgroup.procs", "12\n7\n")
        fs.touch("a/b/sub/cgroup.procs", "99\n")
        fs.touch("a/b/sub/deeper/cgroup.procs", "7\n3\n")
        #expect(try m.pids() == [3, 7, 12, 99])
    }

    @Test func v2FreezeWaitsForCgroupEvents() throws {
        let m = try v2()
        try m.create()
        m.freezeTimeout = 0.05
        fs.touch("a/b/cgroup.freeze", "0")
        fs.touch("a/b/cgroup.events", "populated 1\nfrozen 1\n")
        try m.freeze()
        #expect(fs.read("a/b/cgroup.freeze") == "1")
        #expect(try m.isFrozen())
        // The kernel never reports thawed: a timeout naming the state.
        expectCgroupError("frozen 0", "timed out") { try m.thaw() }
        fs.touch("a/b/cgroup.events", "populated 1\nfrozen 0\n")
        try m.thaw()
        #expect(try !m.isFrozen())
    }

    @Test func hybridCreatesTheUnifiedDirectoryToo() throws {
        for c in ["memory", "pids"] { fs.touch(c + "/cgroup.procs") }
        fs.touch("unified/cgroup.procs")
        let m = try makeCgroupManager(cgroupsPath: "/h1", containerID: "h1", systemd: false,
                                      layout: .v1(["memory", "pids"], hybrid: true), root: fs.root)
        #expect(m.mode == .hybrid)
        try m.create()
        #expect(fs.exists("unified/h1") && fs.exists("memory/h1") && fs.exists("pids/h1"))
        #expect(m.state.paths[""] == fs.root + "/unified/h1")
        let again = makeCgroupManager(state: m.state)
        try again.destroy()
        #expect(!fs.exists("unified/h1") && !fs.exists("memory/h1") && !fs.exists("pids/h1"))
    }
}
