import BrigCore
import BrigLinux
import BrigOCI
import FoundationEssentials
import Glibc
import Testing

/// What the state store does with what a killed or broken brig left: directories without
/// state.json, corrupt state.json, staging directories, and who holds a lock.
@Suite struct StateRecoveryTests {
    func tempRoot() -> String {
        var t = Array("/tmp/brig-recovery-XXXXXX".utf8CString)
        return String(cString: mkdtemp(&t)!)
    }

    @Test func directoryWithoutStateIsAnIncompletePlaceholder() throws {
        let root = tempRoot(); defer { Files.removeAll(root) }
        let store = StateStore(root: root)
        try Files.mkdirAll(store.directory("killed"))
        #expect(store.ids() == ["killed"])
        let r = try store.load("killed")
        #expect(r.incomplete == true && r.pid == 0 && r.id == "killed")
        // It can be locked (delete must) and removed.
        let lock = try store.lock("killed")
        lock.unlock()
        #expect(store.remove("killed") == nil)
        #expect(throws: RuntimeError.self) { _ = try store.lock("killed") }
    }

    @Test func corruptStateSaysWhichFileAndWhy() throws {
        let root = tempRoot(); defer { Files.removeAll(root) }
        let store = StateStore(root: root)
        try Files.mkdirAll(store.directory("bad"))
        try Files.writeAtomically(store.directory("bad") + "/state.json", Array("{\"id\": \"bad\", \"pid\": 1".utf8))
        guard case .corrupt(let why) = try store.read("bad") else { Issue.record("not reported corrupt"); return }
        #expect(why.contains(store.directory("bad") + "/state.json") && why.contains("is corrupt") && why.contains("not JSON"))
        do { _ = try store.load("bad"); Issue.record("loaded a corrupt record") } catch {
            #expect(error.message.contains("is corrupt") && error.message.contains("brig delete --force bad"))
        }
        // A well-formed file that is not a record names the missing field.
        try Files.writeAtomically(store.directory("bad") + "/state.json", Array("{\"id\": \"bad\"}".utf8))
        guard case .corrupt(let why2) = try store.read("bad") else { Issue.record("not reported corrupt"); return }
        #expect(why2.contains("missing"), "\(why2)")
        #expect(store.ids() == ["bad"])
    }

    @Test func idsSkipDotEntriesFilesAndBadNames() throws {
        let root = tempRoot(); defer { Files.removeAll(root) }
        let store = StateStore(root: root)
        for d in [".exe", ".new-x.12", "ok", "with space"] { try Files.mkdirAll(root + "/" + d) }
        try Files.write(root + "/file", "", flags: O_WRONLY | O_CREAT)
        #expect(store.ids() == ["ok"])
    }

    @Test func lockHeldByThisProcessIsNotSomeoneElses() throws {
        let root = tempRoot(); defer { Files.removeAll(root) }
        let store = StateStore(root: root)
        let lock = try store.reserve("c")
        #expect(!store.isLockedElsewhere("c"))
        // The reserved directory was staged and renamed into place: nothing else is left.
        #expect(try Files.list(root) == ["c"])
        lock.unlock()
        let fd = open(store.directory("c"), O_RDONLY | O_DIRECTORY)
        defer { close(fd) }
        #expect(flock(fd, LOCK_EX) == 0)
        #expect(store.isLockedElsewhere("c"))
        flock(fd, LOCK_UN)
        #expect(!store.isLockedElsewhere("c"))
    }

    @Test func staleStagingDirectoriesAreSweptLiveOnesKept() throws {
        let root = tempRoot(); defer { Files.removeAll(root) }
        let store = StateStore(root: root)
        // A dead brig's staging directory goes; a live brig's stays even before it has locked it
        // (it may be between its mkdir and its flock), and so does a locked one.
        let child = fork()
        if child == 0 { _exit(0) }
        var status: Int32 = 0
        waitpid(child, &status, 0)
        try Files.mkdirAll(root + "/.new-c.\(child)")
        try Files.mkdirAll(root + "/.new-c.\(getpid())")
        try Files.mkdirAll(root + "/.new-cc.333")
        let busy = open(root + "/.new-c.\(getpid())", O_RDONLY | O_DIRECTORY)
        defer { close(busy) }
        #expect(store.sweepStaging("c") == 1)
        #expect(try Files.list(root).sorted() == [".new-c.\(getpid())", ".new-cc.333"])
        #expect(flock(busy, LOCK_EX) == 0)
        #expect(store.sweepStaging("c") == 0)
    }

    @Test func removeTakesStateJSONLast() throws {
        let root = tempRoot(); defer { Files.removeAll(root) }
        let store = StateStore(root: root)
        let lock = try store.reserve("c")
        defer { lock.unlock() }
        try Files.writeAtomically(store.directory("c") + "/state.json", Array("{}".utf8))
        try Files.write(store.directory("c") + "/start.sock", "", flags: O_WRONLY | O_CREAT)
        #expect(store.remove("c") == nil)
        #expect(!Files.exists(store.directory("c")))
    }

    @Test func recordWithoutNewFieldsStillDecodes() throws {
        let r = ContainerRecord(id: "x", handle: .namespaces(NamespacesHandle()), bundle: "/b", rootfs: "/b/r", pid: 1,
                                pidStartTime: 2, created: "t", owner: "", annotations: nil, hooks: nil)
        let text = String(decoding: try JSONEncoder().encode(r), as: UTF8.self)
        #expect(!text.contains("incomplete") && !text.contains("helpers"))
        #expect(try JSONDecoder().decode(ContainerRecord.self, from: Data(text.utf8)) == r)
    }

    /// state.json as brig wrote it before the typed handle: a container running across an
    /// upgrade is still read (and so deletable), with what its backend needs.
    @Test func recordsOfThePreviousFormatStillDecode() throws {
        let common = #""id":"old","bundle":"/b","rootfs":"/b/r","pid":10,"pidStartTime":20,"created":"t","owner":"""#
        let namespaces = "{" + common + #","backend":"namespaces","systemdCgroup":true,"cgroup":{"mode":"hybrid","#
            + #""paths":{"memory":"/sys/fs/cgroup/memory/old","":"/sys/fs/cgroup/unified/old"},"unifiedMount":"/sys/fs/cgroup/unified","#
            + #""created":["/sys/fs/cgroup/memory/old"],"joinedExisting":false}}"#
        let r = try JSONDecoder().decode(ContainerRecord.self, from: Data(namespaces.utf8))
        let cgroup = CgroupRecord(mode: "hybrid", paths: ["memory": "/sys/fs/cgroup/memory/old", "": "/sys/fs/cgroup/unified/old"],
                                  unifiedMount: "/sys/fs/cgroup/unified", created: ["/sys/fs/cgroup/memory/old"])
        #expect(r.handle == .namespaces(NamespacesHandle(cgroup: cgroup, systemdCgroup: true)))
        #expect(r.pid == 10 && r.pidStartTime == 20 && r.bundle == "/b")

        let microvm = "{" + common + #","backend":"microvm","systemdCgroup":false,"cgroup":{"mode":"unified","paths":{},"#
            + #""created":[],"joinedExisting":false},"backendState":{"mode":"host-agent","dir":"/run/brig/old","guestPid":"7"}}"#
        let m = try JSONDecoder().decode(ContainerRecord.self, from: Data(microvm.utf8))
        #expect(m.handle == .microvm(MicroVMHandle(mode: "host-agent", stateDir: "/run/brig/old", guestPid: 7)))
        #expect(m.handle.kind == .microvm)

        // Written back in the new format only.
        let text = String(decoding: try JSONEncoder().encode(m), as: UTF8.self)
        #expect(text.contains(#""handle":{"microvm":"#) && !text.contains("backendState") && !text.contains(#""cgroup""#), "\(text)")
        #expect(try JSONDecoder().decode(ContainerRecord.self, from: Data(text.utf8)) == m)
    }

    /// A record naming no backend brig knows is corrupt (`delete --force` removes it), never
    /// read as some other backend's.
    @Test func unknownBackendIsCorrupt() throws {
        let root = tempRoot(); defer { Files.removeAll(root) }
        let store = StateStore(root: root)
        try Files.mkdirAll(store.directory("x"))
        for json in [#"{"id":"x","bundle":"/b","rootfs":"/r","pid":1,"pidStartTime":2,"created":"t","owner":"","backend":"xen"}"#,
                     #"{"id":"x","bundle":"/b","rootfs":"/r","pid":1,"pidStartTime":2,"created":"t","owner":"","handle":{"xen":{}}}"#] {
            try Files.write(store.directory("x") + "/state.json", json, flags: O_WRONLY | O_CREAT | O_TRUNC)
            guard case .corrupt(let why) = try store.read("x") else { Issue.record("\(json) was read as a record"); continue }
            #expect(why.contains("state.json is corrupt"), "\(why)")
        }
    }
}
