@testable import BrigCgroups
import FoundationEssentials
import Glibc
import Testing

/// Why a cgroup v2 placement fails, on a temporary tree laid out as the kernel would leave it
/// (the kernel's side — EBUSY, masked controllers, cgroup.type — is written by hand after
/// `create`, since a plain directory accepts every write).
@Suite struct V2PlacementTests {
    let fs = TempCgroupFS()

    /// A unified host with `controllers` at the root, the container at `path`, created.
    func created(_ path: String = "/a/b", controllers: String = "cpu io memory pids") throws -> any CgroupManager {
        fs.touch("cgroup.controllers", controllers)
        fs.touch("cgroup.subtree_control")
        fs.touch("cgroup.procs", "1\n")
        let m = try makeCgroupManager(cgroupsPath: path, containerID: "x", systemd: false, layout: .unified(), root: fs.root)
        m.skipDevices = true
        try m.create()
        fs.touch("cgroup.subtree_control", controllers)  // what the kernel shows after "+cpu +io …"
        return m
    }

    /// Gives `rel` the kernel's view: its controllers, what it enables, its type, its processes.
    func cgroup(_ rel: String, controllers: String, enabled: String = "", type: String = "domain", procs: String = "") {
        _ = fs.cgroup(rel, ["cgroup.controllers": controllers, "cgroup.subtree_control": enabled,
                            "cgroup.type": type, "cgroup.procs": procs])
    }

    @Test func aParentHoldingProcessesIsNamedForADomainController() throws {
        let m = try created()
        // /a held a process: "+io +memory" got EBUSY, the threaded ones went in, /a became a
        // thread root and /a/b "domain invalid" (what the kernel does).
        cgroup("a", controllers: "cpu io memory pids", enabled: "cpu pids", type: "domain threaded", procs: "42\n")
        cgroup("a/b", controllers: "cpu pids", type: "domain invalid")
        fs.touch("a/b/memory.max")
        expectCgroupError("linux.resources.memory: the memory controller cannot be enabled for \(fs.root)/a/b: \(fs.root)/a holds processes (cgroup v2 no-internal-processes rule)") {
            try m.apply(try resources(#"{"pids":{"limit":5},"memory":{"limit":1048576}}"#))
        }
        #expect(fs.read("a/b/memory.max") == "")
        // Threaded controllers only: the invalid leaf is made threaded (runc) and the limit applies.
        fs.touch("a/b/pids.max")
        try m.apply(try resources(#"{"pids":{"limit":5}}"#))
        #expect(fs.read("a/b/cgroup.type") == "threaded")
        #expect(fs.read("a/b/pids.max") == "5")
    }

    @Test func aThreadedLeafRefusesDomainControllers() throws {
        let m = try created()
        cgroup("a", controllers: "cpu io memory pids", enabled: "cpu pids", type: "domain threaded")
        cgroup("a/b", controllers: "cpu pids", type: "threaded")
        expectCgroupError("linux.resources.memory: cannot enter cgroupv2 \"\(fs.root)/a/b\" with domain controllers -- it is in threaded mode") {
            try m.apply(try resources(#"{"memory":{"limit":1048576}}"#))
        }
        // A controller the kernel shows but refuses in a thread root (runc refuses it too).
        cgroup("a/b", controllers: "cpu io memory pids", type: "domain threaded")
        expectCgroupError("linux.resources.unified[\"io.weight\"]", "it is in domain threaded mode") {
            try m.apply(try resources(#"{"unified":{"io.weight":"50"}}"#))
        }
        // Invalid because of the thread root above, which has no processes: that root is named.
        cgroup("a/b", controllers: "cpu pids", type: "domain invalid")
        expectCgroupError("linux.resources.blockIO", "it is in an invalid state (\(fs.root)/a is in domain threaded mode)") {
            try m.apply(try resources(#"{"blockIO":{"weight":100}}"#))
        }
        fs.touch("a/b/cpu.weight")
        try m.apply(try resources(#"{"cpu":{"shares":1024}}"#))
        #expect(fs.read("a/b/cpu.weight") == "39")
    }

    @Test func aControllerNotDelegatedNamesWhereItStops() throws {
        _ = try created("/d1/d2/c")
        cgroup("d1", controllers: "cpu io memory pids", enabled: "memory pids")
        cgroup("d1/d2", controllers: "memory pids", enabled: "memory pids")
        cgroup("d1/d2/c", controllers: "memory pids")
        let leaf = CgroupDirectory(fs.root + "/d1/d2/c")
        var placement = V2Placement(mount: fs.root, leaf: leaf, mayWrite: { _ in false })
        let notDelegated = placement.whyMissing("cpu", field: "linux.resources.cpu").description
        #expect(notDelegated == "linux.resources.cpu: the cpu controller is not delegated to \(fs.root)/d1/d2: \(fs.root)/d1/cgroup.subtree_control does not enable it and uid \(geteuid()) may not write it")
        placement.mayWrite = { _ in true }
        #expect(placement.whyMissing("cpu", field: "linux.resources.cpu").description
                == "linux.resources.cpu: the cpu controller is not enabled for \(fs.root)/d1/d2: \(fs.root)/d1/cgroup.subtree_control does not list it")
        // Through the manager: the check runs before any write.
        let m = makeCgroupManager(state: CgroupState(mode: .unified, paths: ["": leaf.path], unifiedMount: fs.root))
        fs.touch("d1/d2/c/pids.max")
        expectCgroupError("linux.resources.cpu.cpus", "the cpuset controller is not available on this host: \(fs.root)/cgroup.controllers does not list it") {
            try m.update(try resources(#"{"pids":{"limit":3},"cpu":{"cpus":"0"}}"#))
        }
        #expect(fs.read("d1/d2/c/pids.max") == "")
    }

    @Test func theKernelLackingAControllerIsSaid() throws {
        let m = try created(controllers: "cpu memory pids")
        cgroup("a", controllers: "cpu memory pids", enabled: "cpu memory pids")
        cgroup("a/b", controllers: "cpu memory pids")
        expectCgroupError("linux.resources.rdma: the rdma controller is not available on this host: \(fs.root)/cgroup.controllers does not list it") {
            try m.apply(try resources(#"{"rdma":{"mlx4_0":{"hcaHandles":1}}}"#))
        }
    }

    @Test func requiredControllersFollowWhatIsWritten() throws {
        func names(_ json: String) throws -> [String] { V2Controllers.required(try resources(json)).map { "\($0.field)=\($0.controller)" } }
        #expect(try names(#"{"memory":{"limit":0},"cpu":{"shares":0,"cpus":""},"blockIO":{},"hugepageLimits":[],"devices":[{"allow":false,"access":"rwm"}]}"#) == [])
        #expect(try names(#"{"pids":{"limit":0},"memory":{"reservation":1},"cpu":{"quota":1000,"mems":"0"},"blockIO":{"throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1}]}}"#)
                == ["linux.resources.pids=pids", "linux.resources.memory=memory", "linux.resources.blockIO=io",
                    "linux.resources.cpu=cpu", "linux.resources.cpu.mems=cpuset"])
        #expect(try names(#"{"unified":{"memory.high":"1","cgroup.max.depth":"3","misc.max":"x 1","bad":"1","a/b.c":"1"}}"#)
                == [#"linux.resources.unified["memory.high"]=memory"#, #"linux.resources.unified["misc.max"]=misc"#])
    }

    @Test func mkdirEAGAINIsExplainedByTheAncestorsLimit() throws {
        _ = fs.cgroup("lim", ["cgroup.max.descendants": "0\n", "cgroup.max.depth": "max\n",
                              "cgroup.stat": "nr_descendants 0\nnr_dying_descendants 0\n"])
        let byCount = V2Placement.hierarchyLimit(creating: fs.root + "/lim/c", mount: fs.root)
        #expect(byCount?.description == "cannot create cgroup \(fs.root)/lim/c: \(fs.root)/lim/cgroup.max.descendants is 0 and \(fs.root)/lim already has 0 descendant cgroup(s)")
        fs.touch("lim/cgroup.max.descendants", "max\n")
        #expect(V2Placement.hierarchyLimit(creating: fs.root + "/lim/x/y", mount: fs.root) == nil)
        fs.touch("lim/cgroup.max.depth", "1\n")
        _ = fs.cgroup("lim/x", ["cgroup.max.depth": "max\n", "cgroup.max.descendants": "max\n"])
        let byDepth = V2Placement.hierarchyLimit(creating: fs.root + "/lim/x/y", mount: fs.root)
        #expect(byDepth?.description == "cannot create cgroup \(fs.root)/lim/x/y: \(fs.root)/lim/cgroup.max.depth is 1 and \(fs.root)/lim/x/y would be 2 level(s) below \(fs.root)/lim")
    }

    @Test func aFailedMkdirLeavesNoDirectoryBehind() throws {
        fs.touch("cgroup.controllers", "pids")
        let tooLong = String(repeating: "n", count: 300)
        let m = try makeCgroupManager(cgroupsPath: "/n1/\(tooLong)/c", containerID: "x", systemd: false, layout: .unified(), root: fs.root)
        expectCgroupError("cgroup directory \(fs.root)/n1/\(tooLong)", "File name too long") { try m.join() }
        #expect(!fs.exists("n1"))
    }

    @Test func aFrozenCgroupIsRefusedAndWhatWasMadeIsRemoved() throws {
        fs.touch("cgroup.controllers", "pids")
        _ = fs.cgroup("fz", ["cgroup.freeze": "1\n", "cgroup.events": "populated 0\nfrozen 1\n", "cgroup.procs": ""])
        // The frozen cgroup itself, pre-existing: refused, kept.
        let own = try makeCgroupManager(cgroupsPath: "/fz", containerID: "x", systemd: false, layout: .unified(), root: fs.root)
        expectCgroupError("container's cgroup unexpectedly frozen: \(fs.root)/fz (\(fs.root)/fz/cgroup.freeze is 1;") { try own.join() }
        #expect(fs.exists("fz"))
        // A new cgroup below it: refused naming the ancestor, and the new directories removed.
        let below = try makeCgroupManager(cgroupsPath: "/fz/p/c", containerID: "x", systemd: false, layout: .unified(), root: fs.root)
        expectCgroupError("container's cgroup unexpectedly frozen: \(fs.root)/fz/p/c (\(fs.root)/fz/cgroup.freeze is 1;") { try below.join() }
        #expect(fs.exists("fz") && !fs.exists("fz/p"))
        #expect(below.state.created.isEmpty)
        // Frozen from outside what is visible (only cgroup.events says so).
        fs.touch("fz/cgroup.freeze", "0\n")
        expectCgroupError("\(fs.root)/fz/cgroup.events says frozen 1") { try own.join() }
        fs.touch("fz/cgroup.events", "populated 0\nfrozen 0\n")
        #expect(try own.join() == false)
    }
}
