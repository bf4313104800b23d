@testable import BrigCgroups
import Testing

@Suite struct V1ControllerTests {
    let fs = TempCgroupFS()

    func memoryDir(limit: String = "9223372036854771712") -> CgroupDirectory {
        fs.cgroup("memory/c", ["memory.limit_in_bytes": limit, "memory.memsw.limit_in_bytes": "", "memory.soft_limit_in_bytes": "",
                               "memory.swappiness": "", "memory.oom_control": "", "memory.kmem.tcp.limit_in_bytes": "",
                               "memory.usage_in_bytes": "1000"])
    }

    @Test func memoryLimitsSwapReservationSwappinessOOM() throws {
        let d = memoryDir()
        let r = try resources(#"{"memory":{"limit":67108864,"swap":134217728,"reservation":33554432,"swappiness":10,"disableOOMKiller":true,"kernelTCP":4096}}"#)
        try V1Memory.apply(r.memory!, d)
        #expect(fs.read("memory/c/memory.limit_in_bytes") == "67108864")
        #expect(fs.read("memory/c/memory.memsw.limit_in_bytes") == "134217728")
        #expect(fs.read("memory/c/memory.soft_limit_in_bytes") == "33554432")
        #expect(fs.read("memory/c/memory.swappiness") == "10")
        #expect(fs.read("memory/c/memory.oom_control") == "1")
        #expect(fs.read("memory/c/memory.kmem.tcp.limit_in_bytes") == "4096")
    }

    @Test func memoryAndSwapWriteOrderFollowsTheCurrentLimit() throws {
        // Raising past the current limit: memsw first, then limit.
        let log = WriteLog()
        var d = CgroupDirectory(memoryDir(limit: "1000").path, log: log)
        try V1Memory.apply(try resources(#"{"memory":{"limit":2000,"swap":4000}}"#).memory!, d)
        #expect(log.writes.map(\.file) == ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"])
        // Lowering below the current limit: limit first, then memsw.
        let log2 = WriteLog()
        fs.touch("memory/c/memory.limit_in_bytes", "1000000")
        d = CgroupDirectory(d.path, log: log2)
        try V1Memory.apply(try resources(#"{"memory":{"limit":2000,"swap":4000}}"#).memory!, d)
        #expect(log2.writes.map(\.file) == ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"])
        // Unlimited memory with swap unset unlimits swap too, swap first.
        let log3 = WriteLog()
        d = CgroupDirectory(d.path, log: log3)
        try V1Memory.apply(try resources(#"{"memory":{"limit":-1}}"#).memory!, d)
        #expect(log3.writes.map(\.file) == ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"])
        #expect(log3.writes.map(\.value) == ["-1", "-1"])
    }

    @Test func swappinessOutOfRangeNamesTheField() throws {
        let d = memoryDir()
        expectCgroupError("linux.resources.memory.swappiness", "0-100") {
            try V1Memory.apply(try resources(#"{"memory":{"swappiness":101}}"#).memory!, d)
        }
    }

    @Test func checkBeforeUpdateRefusesALimitBelowUsage() throws {
        let d = memoryDir()
        fs.touch("memory/c/memory.usage_in_bytes", "5000")
        expectCgroupError("linux.resources.memory.limit", "below current usage 5000") {
            try V1Memory.apply(try resources(#"{"memory":{"limit":4096,"checkBeforeUpdate":true}}"#).memory!, d)
        }
        #expect(fs.read("memory/c/memory.limit_in_bytes") == "9223372036854771712")
        // Without the flag it is written (the kernel would decide).
        try V1Memory.apply(try resources(#"{"memory":{"limit":4096}}"#).memory!, d)
        #expect(fs.read("memory/c/memory.limit_in_bytes") == "4096")
    }

    @Test func writeFailureNamesFileValueAndField() throws {
        let d = fs.cgroup("memory/empty", [:])
        expectCgroupError("memory.limit_in_bytes", "\"4096\"", "linux.resources.memory.limit", "No such file") {
            try V1Memory.apply(try resources(#"{"memory":{"limit":4096}}"#).memory!, d)
        }
    }

    @Test func cpuSharesQuotaPeriodBurstIdleRealtime() throws {
        let d = fs.cgroup("cpu/c", ["cpu.shares": "1024", "cpu.cfs_quota_us": "-1", "cpu.cfs_period_us": "100000",
                                    "cpu.cfs_burst_us": "0", "cpu.idle": "0", "cpu.rt_period_us": "", "cpu.rt_runtime_us": ""])
        let r = try resources(#"{"cpu":{"shares":512,"quota":50000,"period":200000,"burst":1000,"idle":1,"realtimePeriod":1000000,"realtimeRuntime":950000}}"#)
        try V1CPU.apply(r.cpu!, d)
        #expect(fs.read("cpu/c/cpu.shares") == "512")
        #expect(fs.read("cpu/c/cpu.cfs_quota_us") == "50000")
        #expect(fs.read("cpu/c/cpu.cfs_period_us") == "200000")
        #expect(fs.read("cpu/c/cpu.cfs_burst_us") == "1000")
        #expect(fs.read("cpu/c/cpu.idle") == "1")
        #expect(fs.read("cpu/c/cpu.rt_period_us") == "1000000")
        #expect(fs.read("cpu/c/cpu.rt_runtime_us") == "950000")
    }

    @Test func cpusetCpusAndMems() throws {
        let d = fs.cgroup("cpuset/c", ["cpuset.cpus": "", "cpuset.mems": ""])
        try V1CPU.applyCpuset(try resources(#"{"cpu":{"cpus":"0-1","mems":"0"}}"#).cpu!, d)
        #expect(fs.read("cpuset/c/cpuset.cpus") == "0-1")
        #expect(fs.read("cpuset/c/cpuset.mems") == "0")
    }

    @Test func newCpusetCgroupsInheritCpusAndMemsFromTheFirstConfiguredAncestor() throws {
        _ = fs.cgroup("cpuset", ["cpuset.cpus": "0-3\n", "cpuset.mems": "0\n"])
        _ = fs.cgroup("cpuset/a", ["cpuset.cpus": "", "cpuset.mems": ""])
        _ = fs.cgroup("cpuset/a/b", ["cpuset.cpus": "\n", "cpuset.mems": ""])
        try V1CPU.inheritCpuset(leaf: fs.root + "/cpuset/a/b")
        #expect(fs.read("cpuset/a/cpuset.cpus") == "0-3" && fs.read("cpuset/a/cpuset.mems") == "0")
        #expect(fs.read("cpuset/a/b/cpuset.cpus") == "0-3" && fs.read("cpuset/a/b/cpuset.mems") == "0")
        // A configured leaf is left alone.
        _ = fs.cgroup("cpuset/c", ["cpuset.cpus": "1", "cpuset.mems": "0"])
        try V1CPU.inheritCpuset(leaf: fs.root + "/cpuset/c")
        #expect(fs.read("cpuset/c/cpuset.cpus") == "1")
    }

    @Test func pidsMax() throws {
        let d = fs.cgroup("pids/c", ["pids.max": ""])
        try V1Controllers.applyPids(try resources(#"{"pids":{"limit":32}}"#).pids!, d)
        #expect(fs.read("pids/c/pids.max") == "32")
        try V1Controllers.applyPids(try resources(#"{"pids":{"limit":0}}"#).pids!, d)
        #expect(fs.read("pids/c/pids.max") == "max")
        try V1Controllers.applyPids(try resources(#"{"pids":{"limit":-1}}"#).pids!, d)
        #expect(fs.read("pids/c/pids.max") == "max")
    }

    @Test func blkioWeightsAndThrottles() throws {
        let files = ["blkio.weight", "blkio.leaf_weight", "blkio.weight_device", "blkio.leaf_weight_device",
                     "blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device",
                     "blkio.throttle.read_iops_device", "blkio.throttle.write_iops_device"]
        let log = WriteLog()
        let d = CgroupDirectory(fs.cgroup("blkio/c", Dictionary(uniqueKeysWithValues: files.map { ($0, "") })).path, log: log)
        let r = try resources(#"""
            {"blockIO":{"weight":500,"leafWeight":300,"weightDevice":[{"major":8,"minor":0,"weight":600,"leafWeight":200}],
             "throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1048576}],"throttleWriteBpsDevice":[{"major":8,"minor":16,"rate":2048}],
             "throttleReadIOPSDevice":[{"major":8,"minor":0,"rate":100}],"throttleWriteIOPSDevice":[{"major":8,"minor":0,"rate":200}]}}
            """#)
        try V1Controllers.applyBlockIO(r.blockIO!, d)
        #expect(fs.read("blkio/c/blkio.weight") == "500")
        #expect(fs.read("blkio/c/blkio.leaf_weight") == "300")
        #expect(log.values("blkio.weight_device") == ["8:0 600"])
        #expect(log.values("blkio.leaf_weight_device") == ["8:0 200"])
        #expect(fs.read("blkio/c/blkio.throttle.read_bps_device") == "8:0 1048576")
        #expect(fs.read("blkio/c/blkio.throttle.write_bps_device") == "8:16 2048")
        #expect(fs.read("blkio/c/blkio.throttle.read_iops_device") == "8:0 100")
        #expect(fs.read("blkio/c/blkio.throttle.write_iops_device") == "8:0 200")
    }

    @Test func blkioWeightUsesBFQWhenOnlyBFQExists() throws {
        let d = fs.cgroup("blkio/b", ["blkio.bfq.weight": ""])
        try V1Controllers.applyBlockIO(try resources(#"{"blockIO":{"weight":700}}"#).blockIO!, d)
        #expect(fs.read("blkio/b/blkio.bfq.weight") == "700")
    }

    @Test func hugetlbNetRdma() throws {
        let h = fs.cgroup("hugetlb/c", ["hugetlb.2MB.limit_in_bytes": "", "hugetlb.2MB.rsvd.limit_in_bytes": ""])
        try V1Controllers.applyHugetlb(try resources(#"{"hugepageLimits":[{"pageSize":"2MB","limit":4194304}]}"#).hugepageLimits!, h)
        #expect(fs.read("hugetlb/c/hugetlb.2MB.limit_in_bytes") == "4194304")
        #expect(fs.read("hugetlb/c/hugetlb.2MB.rsvd.limit_in_bytes") == "4194304")
        expectCgroupError("linux.resources.hugepageLimits.pageSize") {
            try V1Controllers.applyHugetlb(try resources(#"{"hugepageLimits":[{"pageSize":"../x","limit":1}]}"#).hugepageLimits!, h)
        }
        let log = WriteLog()
        let n = CgroupDirectory(fs.cgroup("net/c", ["net_cls.classid": "", "net_prio.ifpriomap": ""]).path, log: log)
        let net = try resources(#"{"network":{"classID":1048577,"priorities":[{"name":"eth0","priority":5},{"name":"lo","priority":2}]}}"#).network!
        try V1Controllers.applyNetCls(net, n)
        try V1Controllers.applyNetPrio(net, n)
        #expect(fs.read("net/c/net_cls.classid") == "1048577")
        #expect(log.values("net_prio.ifpriomap") == ["eth0 5", "lo 2"])
        let rd = fs.cgroup("rdma/c", ["rdma.max": ""])
        try V1Controllers.applyRdma(try resources(#"{"rdma":{"mlx5_1":{"hcaHandles":3,"hcaObjects":10000}}}"#).rdma!, rd)
        #expect(fs.read("rdma/c/rdma.max") == "mlx5_1 hca_handle=3 hca_object=10000")
    }
}
