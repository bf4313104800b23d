import BrigCore
import BrigLinux
import BrigOCI
import FoundationEssentials
import Glibc
import Testing

/// state.json is written and read with BrigJSON; a brig of the previous build (Foundation's
/// coders) must read what this one writes and the other way round: both run side by side.
@Suite struct StateJSONTests {
    static func record() -> ContainerRecord {
        let cgroup = CgroupRecord(mode: "hybrid", paths: ["memory": "/sys/fs/cgroup/memory/c1", "": "/sys/fs/cgroup/unified/c1"],
                                  unifiedMount: "/sys/fs/cgroup/unified", created: ["/sys/fs/cgroup/memory/c1"])
        var r = ContainerRecord(id: "c1", handle: .namespaces(NamespacesHandle(cgroup: cgroup, systemdCgroup: true)),
                                bundle: "/b/\u{e9} \"q\"\n", rootfs: "/b/rootfs", pid: 42, pidStartTime: UInt64.max,
                                created: "2026-12-05T08:00:00.123456789Z", owner: "", annotations: ["a/b": "\u{1}\t"],
                                hooks: Hooks())
        r.hooks?.prestart = [Hook(path: "/bin/h", args: ["h", "x"], env: ["A=1"], timeout: 5)]
        r.helpers = [OwnedProcess(pid: 7, startTime: 8)]
        return r
    }

    @Test func storeAndFoundationReadEachOther() throws {
        let root = "/tmp/brig-statejson-\(getpid())"
        defer { Files.removeAll(root) }
        let store = StateStore(root: root)
        let r = Self.record()
        let lock = try store.reserve(r.id, record: r)
        defer { lock.unlock() }
        let written = try Files.read(store.directory(r.id) + "/state.json")
        #expect(try JSONDecoder().decode(ContainerRecord.self, from: Data(written)) == r)

        var m = r
        m.handle = .microvm(MicroVMHandle(mode: "host-agent", stateDir: "/run/brig/c1", guestPid: 9))
        m.incomplete = true
        try Files.writeAtomically(store.directory(r.id) + "/state.json", Array(try JSONEncoder().encode(m)), mode: 0o600)
        #expect(try store.load(r.id) == m)
        try store.save(m)
        #expect(try JSONDecoder().decode(ContainerRecord.self, from: Data(try Files.read(store.directory(r.id) + "/state.json"))) == m)
    }
}
