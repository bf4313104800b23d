import BrigCgroups
import BrigCore
@testable import BrigNamespaces
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

    /// A `--systemd-cgroup` container's unit survives the record: without it a later `update`
    /// or `delete` would not reach systemd (its properties, StopUnit).
    @Test func systemdUnitSurvivesTheRecord() throws {
        var unit = SystemdUnit(name: "brig-c.scope", slice: "system.slice", user: false, containerID: "c")
        unit.started = true
        var state = CgroupState(mode: .unified, paths: ["": "/sys/fs/cgroup/system.slice/brig-c.scope"], unifiedMount: "/sys/fs/cgroup")
        state.systemd = unit
        let record = CgroupRecord(state)
        #expect(record.systemd == SystemdUnitRecord(name: "brig-c.scope", slice: "system.slice", user: false, containerID: "c", started: true))
        #expect(CgroupState(record) == state)
        let onDisk = try JSONDecoder().decode(CgroupRecord.self, from: try JSONEncoder().encode(state))
        #expect(CgroupState(onDisk) == state)
    }
}
