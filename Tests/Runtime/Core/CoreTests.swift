import BrigCore
import BrigLinux
import BrigOCI
import Glibc
import Testing

@Suite struct LifecycleStateMachineTests {
    @Test(arguments: [
        (LiveFacts(alive: false, startPending: true, frozen: false), ContainerStatus.stopped),
        (LiveFacts(alive: false, startPending: false, frozen: true), .stopped),
        (LiveFacts(alive: true, startPending: true, frozen: false), .created),
        (LiveFacts(alive: true, startPending: false, frozen: false), .running),
        (LiveFacts(alive: true, startPending: false, frozen: true), .paused),
    ])
    func statusFromFacts(facts: LiveFacts, status: ContainerStatus) {
        #expect(Lifecycle.status(facts) == status)
    }

    @Test func allowedOperations() {
        #expect(ContainerStatus.allCases.filter(Lifecycle.canStart) == [.created])
        #expect(ContainerStatus.allCases.filter(Lifecycle.canKill) == [.created, .running, .paused])
        #expect(ContainerStatus.allCases.filter(Lifecycle.canDelete) == [.created, .stopped])
        #expect(ContainerStatus.allCases.filter(Lifecycle.canPause) == [.running])
        #expect(ContainerStatus.allCases.filter(Lifecycle.canResume) == [.paused])
        #expect(Lifecycle.forbidden("start", id: "x", status: .running).message == "cannot start an already running container")
        #expect(Lifecycle.forbidden("delete", id: "x", status: .running).message.contains("not stopped: running"))
    }
}

@Suite struct StateStoreTests {
    func tempRoot() -> String {
        var t = Array("/tmp/brig-store-XXXXXX".utf8CString)
        return String(cString: mkdtemp(&t)!)
    }

    func record(_ id: String) -> ContainerRecord {
        ContainerRecord(id: id, handle: .namespaces(NamespacesHandle()), bundle: "/b", rootfs: "/b/rootfs", pid: 42,
                        pidStartTime: 7, created: "t", owner: "", annotations: ["a": "b"], hooks: nil)
    }

    @Test func reserveSaveLoadRemove() throws {
        let root = tempRoot(); defer { Files.removeAll(root) }
        let store = StateStore(root: root + "/nested/state")
        let lock = try store.reserve("c1")
        #expect(throws: RuntimeError.self) { _ = try store.reserve("c1") }
        try store.save(record("c1"))
        lock.unlock()
        #expect(try store.load("c1") == record("c1"))
        #expect(store.ids() == ["c1"])
        // No temp files remain next to state.json after the atomic write.
        #expect(try Files.list(store.directory("c1")) == ["state.json"])
        store.remove("c1")
        #expect(store.ids().isEmpty)
        do { _ = try store.load("c1"); Issue.record("load of removed container succeeded") } catch {
            #expect(error.kind == .notFound)
        }
    }

    /// The reservation with a first record: the directory appears with it, and a taken id
    /// leaves neither a staging directory nor a changed record behind.
    @Test func reserveWithRecordAppearsWithIt() throws {
        let root = tempRoot(); defer { Files.removeAll(root) }
        let store = StateStore(root: root)
        var first = record("c3"); first.incomplete = true
        let lock = try store.reserve("c3", record: first)
        #expect(try store.load("c3") == first)
        #expect(try Files.list(store.directory("c3")) == ["state.json"])
        #expect(throws: RuntimeError.self) { _ = try store.reserve("c3", record: record("c3")) }
        lock.unlock()
        #expect(try store.load("c3") == first)
        #expect(try Files.list(root) == ["c3"])
    }

    @Test func lockIsExclusive() throws {
        let root = tempRoot(); defer { Files.removeAll(root) }
        let store = StateStore(root: root)
        let lock = try store.reserve("c2")
        try store.save(record("c2"))
        // A second open file description cannot take the lock while the first holds it.
        let fd = open(store.directory("c2"), O_RDONLY | O_DIRECTORY)
        #expect(flock(fd, LOCK_EX | LOCK_NB) != 0)
        lock.unlock()
        #expect(flock(fd, LOCK_EX | LOCK_NB) == 0)
        close(fd)
    }

    @Test(arguments: ["ok-id_1.2+x", "a"]) func validIDs(id: String) throws { try StateStore.validate(id: id) }
    @Test(arguments: ["", ".", "..", "a/b", "a b", "a\0b", "ümlaut"]) func invalidIDs(id: String) {
        #expect(throws: RuntimeError.self) { try StateStore.validate(id: id) }
    }
}

@Suite struct HookRunnerTests {
    let state = ContainerState(id: "h", status: .creating, pid: 1, bundle: "/b", rootfs: "/b/rootfs", created: "t")

    @Test func passesStateOnStdinAndArgs() throws {
        var t = Array("/tmp/brig-hook-XXXXXX".utf8CString)
        let dir = String(cString: mkdtemp(&t)!); defer { Files.removeAll(dir) }
        let hook = Hook(path: "/bin/sh", args: ["sh", "-c", "cat > \(dir)/in; echo $0 $FOO > \(dir)/args", "zero"], env: ["FOO=bar"])
        try HookRunner.run([hook], kind: "test", state: state)
        #expect(try Files.readString(dir + "/in").contains("\"id\":\"h\""))
        #expect(try Files.readString(dir + "/args") == "zero bar\n")
    }

    @Test func stdioOnlyAndInheritedEnvironment() throws {
        var t = Array("/tmp/brig-hook-XXXXXX".utf8CString)
        let dir = String(cString: mkdtemp(&t)!); defer { Files.removeAll(dir) }
        let leaked = open("/dev/null", O_RDONLY)  // no O_CLOEXEC: must still not reach the hook
        defer { close(leaked) }
        setenv("BRIG_HOOK_TEST_MARK", "inherited", 1)
        defer { unsetenv("BRIG_HOOK_TEST_MARK") }
        let hook = Hook(path: "/bin/sh", args: ["sh", "-c", "ls /proc/self/fd | tr '\\n' ' ' > \(dir)/fds; echo $BRIG_HOOK_TEST_MARK > \(dir)/env"])
        try HookRunner.run([hook], kind: "test", state: state)
        #expect(try Files.readString(dir + "/fds") == "0 1 2 3 ")  // ls holds 3
        #expect(try Files.readString(dir + "/env") == "inherited\n")
        try HookRunner.run([hook], kind: "test", state: state, defaultEnv: ["BRIG_HOOK_TEST_MARK=given"])
        #expect(try Files.readString(dir + "/env") == "given\n")
    }

    @Test func reportsFailureWithOutput() {
        do {
            try HookRunner.run([Hook(path: "/bin/sh", args: ["sh", "-c", "echo nope; exit 2"])], kind: "poststart", state: state)
            Issue.record("a failing hook did not throw")
        } catch {
            #expect(error.message == "poststart hook #0 (/bin/sh) failed: exit status 2: nope")
        }
    }

    @Test func missingHookBinary() {
        #expect(throws: RuntimeError.self) { try HookRunner.run([Hook(path: "/nonexistent/hook")], kind: "x", state: state) }
    }
}
