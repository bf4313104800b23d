import BrigCgroups
import BrigOCI
import FoundationEssentials
import Testing

@Suite struct StatsTests {
    let fs = TempCgroupFS()

    func v1Manager() -> V1Manager {
        let ctrls = ["memory", "cpu", "cpuacct", "pids", "blkio", "hugetlb", "freezer"]
        let state = try! CgroupState.resolve(cgroupsPath: "/c", containerID: "c", systemd: false, layout: .v1(ctrls), root: fs.root)
        return V1Manager(state: state)
    }

    @Test func v1StatsFromSampleFiles() throws {
        _ = fs.cgroup("memory/c", [
            "memory.stat": "cache 4096\nrss 8192\nmapped_file 0\n",
            "memory.usage_in_bytes": "12288", "memory.max_usage_in_bytes": "20000", "memory.failcnt": "3",
            "memory.limit_in_bytes": "67108864",
            "memory.memsw.usage_in_bytes": "12288", "memory.memsw.max_usage_in_bytes": "20000", "memory.memsw.failcnt": "0",
            "memory.memsw.limit_in_bytes": "134217728",
            "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        ])
        _ = fs.cgroup("cpuacct/c", ["cpuacct.usage": "5000000", "cpuacct.usage_percpu": "3000000 2000000 \n",
                                    "cpuacct.usage_percpu_sys": "1000 2000", "cpuacct.usage_percpu_user": "3000 4000",
                                    "cpuacct.stat": "user 30\nsystem 20\n"])
        _ = fs.cgroup("cpu/c", ["cpu.stat": "nr_periods 10\nnr_throttled 2\nthrottled_time 777\n"])
        _ = fs.cgroup("pids/c", ["pids.current": "3", "pids.max": "max"])
        _ = fs.cgroup("blkio/c", ["blkio.throttle.io_service_bytes_recursive": "8:0 Read 100\n8:0 Write 200\nTotal 300\n",
                                  "blkio.throttle.io_serviced_recursive": "8:0 Read 1\n8:0 Write 2\nTotal 3\n"])
        _ = fs.cgroup("hugetlb/c", ["hugetlb.2MB.limit_in_bytes": "0", "hugetlb.2MB.usage_in_bytes": "2097152",
                                    "hugetlb.2MB.max_usage_in_bytes": "4194304", "hugetlb.2MB.failcnt": "1"])
        let m = v1Manager()
        let s = try m.stats()
        #expect(s.memory.cache == 4096)
        #expect(s.memory.raw["rss"] == 8192)
        #expect(s.memory.usage.usage == 12288 && s.memory.usage.max == 20000 && s.memory.usage.failcnt == 3)
        #expect(s.memory.usage.limit == 67108864)
        #expect(s.memory.swap.limit == 134217728)
        #expect(s.cpu.usage.total == 5000000)
        #expect(s.cpu.usage.percpu == [3000000, 2000000])
        #expect(s.cpu.usage.percpuKernel == [1000, 2000] && s.cpu.usage.percpuUser == [3000, 4000])
        #expect(s.cpu.usage.user == 300_000_000 && s.cpu.usage.kernel == 200_000_000)  // USER_HZ 100
        #expect(s.cpu.throttling.periods == 10 && s.cpu.throttling.throttledPeriods == 2 && s.cpu.throttling.throttledTime == 777)
        #expect(s.pids.current == 3 && s.pids.limit == 0)
        #expect(s.blkio.ioServiceBytesRecursive == [BlkioEntry(major: 8, minor: 0, op: "Read", value: 100),
                                                    BlkioEntry(major: 8, minor: 0, op: "Write", value: 200)])
        #expect(s.blkio.ioServicedRecursive.count == 2)
        #expect(s.hugetlb["2MB"]?.usage == 2097152 && s.hugetlb["2MB"]?.max == 4194304 && s.hugetlb["2MB"]?.failcnt == 1)
        #expect(try m.oomKillCount() == 2)
    }

    @Test func v2StatsFromSampleFiles() throws {
        _ = fs.cgroup("c", [
            "memory.stat": "anon 1000\nfile 2000\n", "memory.current": "3000", "memory.max": "max", "memory.peak": "5000",
            "memory.events": "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n",
            "memory.swap.current": "100", "memory.swap.max": "max",
            "cpu.stat": "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 4\nnr_throttled 1\nthrottled_usec 9\n",
            "pids.current": "2", "pids.max": "64",
            "io.stat": "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n",
            "hugetlb.2MB.current": "0", "hugetlb.2MB.max": "max", "hugetlb.2MB.rsvd.max": "max", "hugetlb.2MB.events": "max 5\n",
            "cgroup.freeze": "0", "cgroup.events": "populated 1\nfrozen 0\n",
        ])
        let m = V2Manager(state: CgroupState(mode: .unified, paths: ["": fs.root + "/c"]))
        let s = try m.stats()
        #expect(s.memory.cache == 2000 && s.memory.usage.usage == 3000 && s.memory.usage.limit == UInt64.max)
        #expect(s.memory.usage.max == 5000 && s.memory.usage.failcnt == 4)
        #expect(s.memory.swap.usage == 3100 && s.memory.swap.limit == UInt64.max)
        #expect(s.cpu.usage.total == 1_500_000 && s.cpu.usage.user == 1_000_000 && s.cpu.usage.kernel == 500_000)
        #expect(s.cpu.throttling.throttledTime == 9000)
        #expect(s.pids.current == 2 && s.pids.limit == 64)
        #expect(s.blkio.ioServiceBytesRecursive.map(\.value) == [10, 20])
        #expect(s.blkio.ioServicedRecursive.map(\.op) == ["Read", "Write"])
        #expect(Array(s.hugetlb.keys) == ["2MB"])
        #expect(s.hugetlb["2MB"]?.failcnt == 5 && s.hugetlb["2MB"]?.max == 0 && s.hugetlb["2MB"]?.usage == 0)
        #expect(try m.oomKillCount() == 1)
    }

    @Test func jsonShapeMatchesRuncEvents() throws {
        var s = CgroupStats()
        s.cpu.usage.total = 10
        s.memory.usage.limit = 100
        s.pids.current = 1
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let json = String(decoding: try enc.encode(s), as: UTF8.self)
        #expect(json.contains(#""cpu":{"throttling":{},"usage":{"kernel":0,"total":10,"user":0}}"#))
        #expect(json.contains(#""usage":{"failcnt":0,"limit":100}"#))
        #expect(json.contains(#""pids":{"current":1}"#))
        #expect(json.contains(#""hugetlb":{}"#))
        #expect(json.contains(#""blkio":{}"#))
        #expect(json.contains(#""network_interfaces":null"#))
        #expect(!json.contains("percpu") && !json.contains("raw"))
        var t = s
        t.cpu.usage.percpu = [1, 2]
        t.cpu.usage.percpuKernel = [3]
        let withPercpu = String(decoding: try enc.encode(t), as: UTF8.self)
        #expect(withPercpu.contains(#""percpu":[1,2],"percpu_kernel":[3]"#))
        #expect(try JSONDecoder().decode(CgroupStats.self, from: Data(withPercpu.utf8)) == t)
        let back = try JSONDecoder().decode(CgroupStats.self, from: Data(json.utf8))
        #expect(back == s)
    }
}
