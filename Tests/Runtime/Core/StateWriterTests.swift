import BrigCore
import BrigJSON
import BrigLinux
import BrigOCI
import Glibc
import Testing

/// state.json as the store writes it: the bytes the synthesized Encodable wrote (every field, in
/// its order, nil ones left out), and read back as the same record.
@Suite struct StateWriterTests {
    /// Records of each backend with every field set, and with none of the optional ones (maps of
    /// one entry, so that their order is fixed).
    static func records() -> [ContainerRecord] {
        let systemd = SystemdUnitRecord(name: "brig-x.scope", slice: "system.slice", user: true, containerID: "x", started: false)
        let cgroup = CgroupRecord(mode: "hybrid", paths: ["memory": "/sys/fs/cgroup/memory/x"], unifiedMount: "/sys/fs/cgroup/unified",
                                  created: ["/sys/fs/cgroup/memory/x", "/sys/fs/cgroup/unified/x"], joinedExisting: true, systemd: systemd)
        var full = ContainerRecord(id: "x", handle: .namespaces(NamespacesHandle(cgroup: cgroup, systemdCgroup: true)),
                                   bundle: "/b/\u{e9} \"q\"\n", rootfs: "/b/rootfs", pid: -1, pidStartTime: UInt64.max,
                                   created: "2026-12-05T08:00:00.123456789Z", owner: "u", annotations: ["a/b": "\u{1}\t"], hooks: Hooks())
        full.hooks?.prestart = [Hook(path: "/bin/h", args: ["h", "x"], env: ["A=1"], timeout: 5), Hook(path: "/bin/g")]
        full.hooks?.createRuntime = [Hook(path: "/1")]; full.hooks?.createContainer = [Hook(path: "/2")]
        full.hooks?.startContainer = [Hook(path: "/3")]; full.hooks?.poststart = [Hook(path: "/4")]; full.hooks?.poststop = [Hook(path: "/5")]
        full.incomplete = false
        full.helpers = [OwnedProcess(pid: 7, startTime: 8), OwnedProcess(pid: Int32.min, startTime: 0)]
        var microvm = full
        microvm.handle = .microvm(MicroVMHandle(mode: "kvm", stateDir: "/run/brig/x", guestPid: 3, cgroup: CgroupRecord()))
        let bare = ContainerRecord(id: "y", handle: .microvm(MicroVMHandle(mode: "host-agent", stateDir: "", guestPid: 0)),
                                   bundle: "", rootfs: "", pid: 0, pidStartTime: 0, created: "", owner: "", annotations: nil, hooks: nil)
        return [full, microvm, bare, .placeholder(id: "z")]
    }

    /// What the synthesized Encodable wrote for `records()` (commit 64747cc).
    static let written: [String] = [
        #"{"id":"x","handle":{"namespaces":{"cgroup":{"mode":"hybrid","paths":{"memory":"/sys/fs/cgroup/memory/x"},"unifiedMount":"/sys/fs/cgroup/unified","created":["/sys/fs/cgroup/memory/x","/sys/fs/cgroup/unified/x"],"joinedExisting":true,"systemd":{"name":"brig-x.scope","slice":"system.slice","user":true,"containerID":"x","started":false}},"systemdCgroup":true}},"bundle":"/b/é \"q\"\n","rootfs":"/b/rootfs","pid":-1,"pidStartTime":18446744073709551615,"created":"2026-12-05T08:00:00.123456789Z","owner":"u","annotations":{"a/b":"\u0001\t"},"hooks":{"prestart":[{"path":"/bin/h","args":["h","x"],"env":["A=1"],"timeout":5},{"path":"/bin/g"}],"createRuntime":[{"path":"/1"}],"createContainer":[{"path":"/2"}],"startContainer":[{"path":"/3"}],"poststart":[{"path":"/4"}],"poststop":[{"path":"/5"}]},"incomplete":false,"helpers":[{"pid":7,"startTime":8},{"pid":-2147483648,"startTime":0}]}"#,
        #"{"id":"x","handle":{"microvm":{"mode":"kvm","stateDir":"/run/brig/x","guestPid":3,"cgroup":{"mode":"legacy","paths":{},"created":[],"joinedExisting":false}}},"bundle":"/b/é \"q\"\n","rootfs":"/b/rootfs","pid":-1,"pidStartTime":18446744073709551615,"created":"2026-12-05T08:00:00.123456789Z","owner":"u","annotations":{"a/b":"\u0001\t"},"hooks":{"prestart":[{"path":"/bin/h","args":["h","x"],"env":["A=1"],"timeout":5},{"path":"/bin/g"}],"createRuntime":[{"path":"/1"}],"createContainer":[{"path":"/2"}],"startContainer":[{"path":"/3"}],"poststart":[{"path":"/4"}],"poststop":[{"path":"/5"}]},"incomplete":false,"helpers":[{"pid":7,"startTime":8},{"pid":-2147483648,"startTime":0}]}"#,
        #"{"id":"y","handle":{"microvm":{"mode":"host-agent","stateDir":"","guestPid":0}},"bundle":"","rootfs":"","pid":0,"pidStartTime":0,"created":"","owner":""}"#,
        #"{"id":"z","handle":{"namespaces":{"cgroup":{"mode":"legacy","paths":{},"created":[],"joinedExisting":false},"systemdCgroup":false}},"bundle":"","rootfs":"","pid":0,"pidStartTime":0,"created":"","owner":"","incomplete":true}"#,
    ]

    @Test func storeWritesWhatTheEncoderWroteAndReadsItBack() throws {
        let root = "/tmp/brig-state-writer-\(getpid())"
        defer { Files.removeAll(root) }
        let store = StateStore(root: root)
        #expect(Self.records().count == Self.written.count)
        for (r, expected) in zip(Self.records(), Self.written) {
            try Files.mkdirAll(store.directory(r.id))
            try store.save(r)
            let bytes = try Files.read(store.directory(r.id) + "/state.json")
            #expect(String(decoding: bytes, as: UTF8.self) == expected)
            #expect(try store.load(r.id) == r)
            #expect(try JSONDecoding.decode(ContainerRecord.self, from: bytes) == r)
            #expect(String(decoding: try JSONEncoding.encode(r), as: UTF8.self) == expected, "encode(to:) is the writer's")
        }
    }

    /// The first two records set every field (of the record and of what it contains), so that a
    /// field a writer or reader leaves out fails the round trip.
    @Test func theFullRecordSetsEveryField() {
        let optionals = Self.records().prefix(2).flatMap { ConfigGoldenTests.optionals($0) }
        let unset = Set(optionals.filter { !$0.set }.map(\.field)).subtracting(optionals.filter(\.set).map(\.field))
        #expect(unset.isEmpty, "fields the full record leaves unset: \(unset.sorted())")
    }
}
