import BrigCgroups
import BrigCore
import FoundationEssentials
import Testing

/// The core records a cgroup as `CgroupRecord` without knowing cgroups; it must stay the same
/// JSON as BrigCgroups' `CgroupState`, which state.json held before the typed handle.
@Suite struct HandleTests {
    @Test func cgroupRecordIsCgroupStateOnDisk() throws {
        let state = CgroupState(mode: .hybrid, paths: ["cpu,cpuacct": "/sys/fs/cgroup/cpu,cpuacct/c", "": "/sys/fs/cgroup/unified/c"],
                                unifiedMount: "/sys/fs/cgroup/unified", created: ["/sys/fs/cgroup/cpu,cpuacct/c"], joinedExisting: true)
        let record = try JSONDecoder().decode(CgroupRecord.self, from: try JSONEncoder().encode(state))
        #expect(record == CgroupRecord(mode: "hybrid", paths: state.paths, unifiedMount: state.unifiedMount,
                                       created: state.created, joinedExisting: true))
        #expect(try JSONDecoder().decode(CgroupState.self, from: try JSONEncoder().encode(record)) == state)
    }
}
