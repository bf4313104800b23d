import BrigCgroups
import Testing

@Suite struct V2ControllerTests {
    let fs = TempCgroupFS()

    func dir(_ files: [String], log: WriteLog? = nil) -> CgroupDirectory {
        CgroupDirectory(fs.cgroup("c", Dictionary(uniqueKeysWithValues: files.map { ($0, "") })).path, log: log)
    }

    @Test func conversions() throws {
        #expect(cpuWeight(fromShares: 0) == 0)
        #expect(cpuWeight(fromShares: 2) == 1)
        #expect(cpuWeight(fromShares: 1024) == 39)
        #expect(cpuWeight(fromShares: 262_144) == 10000)
        #expect(ioWeight(fromBlkioWeight: 10) == 1)
        #expect(ioWeight(fromBlkioWeight: 500) == 4950)
        #expect(ioWeight(fromBlkioWeight: 1000) == 10000)
        #expect(try swapMaxV2(swap: 0, memory: -1) == -1)
        #expect(try swapMaxV2(swap: 300, memory: 100) == 200)
        #expect(try swapMaxV2(swap: -1, memory: 100) == -1)
        #expect(throws: CgroupError.self) { try swapMaxV2(swap: 50, memory: 100) }
        #expect(throws: CgroupError.self) { try swapMaxV2(swap: 50, memory: 0) }
    }

    @Test func memoryMaxSwapLow() throws {
        let d = dir(["memory.max", "memory.swap.max", "memory.low", "memory.current"])
        try V2Controllers.applyMemory(try resources(#"{"memory":{"limit":1000000,"swap":3000000,"reservation":500000}}"#).memory!, d)
        #expect(fs.read("c/memory.max") == "1000000")
        #expect(fs.read("c/memory.swap.max") == "2000000")
        #expect(fs.read("c/memory.low") == "500000")
        try V2Controllers.applyMemory(try resources(#"{"memory":{"limit":-1}}"#).memory!, d)
        #expect(fs.read("c/memory.max") == "max")
        #expect(fs.read("c/memory.swap.max") == "max")
        try V2Controllers.applyMemory(try resources(#"{"memory":{"limit":4096,"swap":4096}}"#).memory!, d)
        #expect(fs.read("c/memory.swap.max") == "0")
    }

    @Test func memoryWithoutSwapAccountingIgnoresUnlimitedSwap() throws {
        let d = dir(["memory.max"])
        try V2Controllers.applyMemory(try resources(#"{"memory":{"limit":-1}}"#).memory!, d)
        #expect(fs.read("c/memory.max") == "max")
    }

    @Test func checkBeforeUpdateLeavesTheLimitAlone() throws {
        let d = dir(["memory.max", "memory.swap.max"])
        fs.touch("c/memory.max", "max")
        fs.touch("c/memory.current", "10000")
        expectCgroupError("linux.resources.memory.limit", "10000") {
            try V2Controllers.applyMemory(try resources(#"{"memory":{"limit":8192,"checkBeforeUpdate":true}}"#).memory!, d)
        }
        #expect(fs.read("c/memory.max") == "max")
        try V2Controllers.applyMemory(try resources(#"{"memory":{"limit":20000,"checkBeforeUpdate":true}}"#).memory!, d)
        #expect(fs.read("c/memory.max") == "20000")
    }

    @Test func cpuWeightMaxBurstIdle() throws {
        let d = dir(["cpu.weight", "cpu.max", "cpu.max.burst", "cpu.idle", "cpuset.cpus", "cpuset.mems"])
        let c = try resources(#"{"cpu":{"shares":1024,"quota":50000,"period":100000,"burst":20000,"idle":0,"cpus":"0","mems":"0"}}"#).cpu!
        try V2Controllers.applyCPU(c, d)
        try V2Controllers.applyCpuset(c, d)
        #expect(fs.read("c/cpu.weight") == "39")
        #expect(fs.read("c/cpu.max") == "50000 100000")
        #expect(fs.read("c/cpu.max.burst") == "20000")
        #expect(fs.read("c/cpu.idle") == "0")
        #expect(fs.read("c/cpuset.cpus") == "0")
        #expect(fs.read("c/cpuset.mems") == "0")
        try V2Controllers.applyCPU(try resources(#"{"cpu":{"quota":-1}}"#).cpu!, d)
        #expect(fs.read("c/cpu.max") == "max")
        try V2Controllers.applyCPU(try resources(#"{"cpu":{"period":250000}}"#).cpu!, d)
        #expect(fs.read("c/cpu.max") == "max 250000")
    }

    @Test func unsupportedFieldsAreNamed() throws {
        expectCgroupError("linux.resources.memory.swappiness", "cgroup v2") {
            try V2Controllers.checkSupported(try resources(#"{"memory":{"swappiness":60}}"#))
        }
        expectCgroupError("linux.resources.cpu.realtimeRuntime") {
            try V2Controllers.checkSupported(try resources(#"{"cpu":{"realtimeRuntime":1000}}"#))
        }
        expectCgroupError("linux.resources.network.classID") {
            try V2Controllers.checkSupported(try resources(#"{"network":{"classID":1}}"#))
        }
        expectCgroupError("linux.resources.network.priorities") {
            try V2Controllers.checkSupported(try resources(#"{"network":{"priorities":[{"name":"lo","priority":1}]}}"#))
        }
        try V2Controllers.checkSupported(try resources(#"{"memory":{"limit":1,"disableOOMKiller":true},"cpu":{"shares":2}}"#))
    }

    @Test func pidsIOHugetlbRdma() throws {
        let log = WriteLog()
        let d = dir(["pids.max", "io.weight", "io.max", "hugetlb.1GB.max", "rdma.max"], log: log)
        let r = try resources(#"""
            {"pids":{"limit":-1},"blockIO":{"weight":500,
             "throttleReadBpsDevice":[{"major":8,"minor":0,"rate":100}],"throttleWriteBpsDevice":[{"major":8,"minor":0,"rate":200}],
             "throttleReadIOPSDevice":[{"major":8,"minor":16,"rate":10}],"throttleWriteIOPSDevice":[{"major":8,"minor":0,"rate":20}]},
             "hugepageLimits":[{"pageSize":"1GB","limit":1073741824}],"rdma":{"mlx4":{"hcaHandles":2}}}
            """#)
        try V2Controllers.applyPids(r.pids!, d)
        try V2Controllers.applyIO(r.blockIO!, d)
        try V2Controllers.applyHugetlb(r.hugepageLimits!, d)
        try V2Controllers.applyRdma(r.rdma!, d)
        #expect(fs.read("c/pids.max") == "max")
        #expect(fs.read("c/io.weight") == "4950")
        #expect(log.values("io.max") == ["8:0 rbps=100 wbps=200 wiops=20", "8:16 riops=10"])
        #expect(fs.read("c/hugetlb.1GB.max") == "1073741824")
        #expect(fs.read("c/rdma.max") == "mlx4 hca_handle=2")
    }

    @Test func ioWithBFQUsesRawWeightsAndDeviceWeights() throws {
        let log = WriteLog()
        let d = dir(["io.bfq.weight"], log: log)
        try V2Controllers.applyIO(try resources(#"{"blockIO":{"weight":500,"weightDevice":[{"major":8,"minor":0,"weight":300}]}}"#).blockIO!, d)
        #expect(log.values("io.bfq.weight") == ["500", "8:0 300"])
        let plain = CgroupDirectory(fs.cgroup("p", ["io.weight": ""]).path)
        expectCgroupError("linux.resources.blockIO.weightDevice", "BFQ") {
            try V2Controllers.applyIO(try resources(#"{"blockIO":{"weightDevice":[{"major":8,"minor":0,"weight":300}]}}"#).blockIO!, plain)
        }
    }

    @Test func unifiedKeys() throws {
        let d = dir(["memory.high", "cgroup.controllers"])
        fs.touch("c/cgroup.controllers", "cpu memory pids")
        try V2Controllers.applyUnified(["memory.high": "500000"], d)
        #expect(fs.read("c/memory.high") == "500000")
        expectCgroupError("linux.resources.unified", "file name") { try V2Controllers.applyUnified(["../memory.max": "1"], d) }
        expectCgroupError("linux.resources.unified", "file name") { try V2Controllers.applyUnified(["a/b.c": "1"], d) }
        expectCgroupError("linux.resources.unified", "controller \"io\" is not available") {
            try V2Controllers.applyUnified(["io.max": "8:0 rbps=1"], d)
        }
    }
}
