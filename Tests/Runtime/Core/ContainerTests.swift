import BrigCore
import BrigLinux
import BrigOCI
import Glibc
import Testing

/// A backend that runs nothing: it records what it was asked and derives its facts from what
/// it did, so the core's orchestration (lifecycle checks, order, hooks, clean-up) is tested
/// without root.
final class FakeBackendLog: @unchecked Sendable {
    var calls: [String] = []
    var facts = LiveFacts(alive: true, startPending: true, frozen: false)
    var killed = false
    var failCreate: RuntimeError?
    /// Makes the record's save fail: state.json becomes a non-empty directory.
    var breakSave = false
    /// Where the fake's start and the hooks both append, to see their order.
    var trace: String?
}

struct FakeBackend: Backend {
    let log: FakeBackendLog
    var name: String { "fake" }

    func create(_ o: CreateOptions, store: StateStore, reserve: Reserve) throws(RuntimeError) -> ContainerRecord {
        try reserve(nil)
        log.calls.append("create")
        if let e = log.failCreate { throw e }
        if log.breakSave { try? Files.mkdirAll(store.directory(o.id) + "/state.json/x") }
        return ContainerTests.record(o.id, hooks: o.spec.hooks)
    }
    func start(_ record: ContainerRecord, store: StateStore) throws(RuntimeError) {
        log.calls.append("start")
        if let t = log.trace { try? Files.write(t, "start\n", flags: O_WRONLY | O_APPEND | O_CREAT) }
        log.facts.startPending = false
    }
    func exec(_ options: ExecOptions, record: ContainerRecord, spec: Spec, store: StateStore) throws(RuntimeError) -> Int32 {
        log.calls.append("exec")
        return 4242
    }
    func facts(_ record: ContainerRecord, store: StateStore) -> LiveFacts { log.facts }
    func kill(_ record: ContainerRecord, signal: Int32, all: Bool) throws(RuntimeError) {
        log.calls.append("kill \(signal)\(all ? " all" : "")")
        // A frozen process dies only once thawed.
        if signal == SIGKILL { log.killed = true; if !log.facts.frozen { log.facts.alive = false } }
    }
    func pause(_ record: ContainerRecord) throws(RuntimeError) { log.calls.append("pause"); log.facts.frozen = true }
    func resume(_ record: ContainerRecord) throws(RuntimeError) {
        log.calls.append("resume")
        log.facts.frozen = false
        if log.killed { log.facts.alive = false }
    }
    func pids(_ record: ContainerRecord) throws(RuntimeError) -> [Int32] {
        guard log.facts.alive else { throw RuntimeError(.system, "no cgroup") }
        return [record.pid]
    }
    func destroy(_ record: ContainerRecord, store: StateStore) throws(RuntimeError) {
        log.calls.append("destroy \(record.pid)")
    }
}

@Suite struct ContainerTests {
    static func record(_ id: String, hooks: Hooks? = nil) -> ContainerRecord {
        ContainerRecord(id: id, handle: .namespaces(NamespacesHandle()), bundle: "/b", rootfs: "/b/rootfs", pid: 42,
                        pidStartTime: 7, created: "t", owner: "", annotations: nil, hooks: hooks)
    }

    let dir: String
    let log = FakeBackendLog()
    let containers: Containers
    /// What went to `warn`.
    let warned = FakeBackendLog()
    var warnings: [String] { warned.calls }

    init() {
        var t = Array("/tmp/brig-container-XXXXXX".utf8CString)
        dir = String(cString: mkdtemp(&t)!)
        let (log, warned) = (log, warned)
        containers = Containers(store: StateStore(root: dir + "/state"), warn: { warned.calls.append($0) }) { _ in FakeBackend(log: log) }
    }

    /// A saved container whose backend reports `facts`.
    func saved(_ id: String, _ facts: LiveFacts, hooks: Hooks? = nil) throws -> Container {
        let lock = try containers.store.reserve(id)
        try containers.store.save(Self.record(id, hooks: hooks))
        lock.unlock()
        log.facts = facts
        return try containers.load(id)
    }

    static let created = LiveFacts(alive: true, startPending: true, frozen: false)
    static let running = LiveFacts(alive: true, startPending: false, frozen: false)
    static let paused = LiveFacts(alive: true, startPending: false, frozen: true)
    static let stopped = LiveFacts(alive: false, startPending: false, frozen: false)

    /// A hook that appends `word` to `file`.
    static func hook(_ word: String, _ file: String) -> Hook {
        Hook(path: "/bin/sh", args: ["sh", "-c", "echo \(word) >> \(file)"])
    }

    @Test func createSavesTheRecord() throws {
        defer { Files.removeAll(dir) }
        let r = try containers.create(CreateOptions(id: "c", bundle: "/b", spec: Spec())) { _ in .namespaces }
        #expect(try containers.store.load("c") == r)
        #expect(try containers.load("c").status == .created)
        #expect(log.calls == ["create"])
    }

    @Test func failedCreateLeavesNothing() throws {
        defer { Files.removeAll(dir) }
        log.failCreate = RuntimeError(.config, "root.path: nope")
        #expect { try containers.create(CreateOptions(id: "c", bundle: "/b", spec: Spec())) { _ in .namespaces } } throws: {
            ($0 as? RuntimeError)?.message == "root.path: nope"
        }
        #expect(!Files.exists(containers.store.directory("c")))
        #expect(containers.store.ids().isEmpty)
    }

    /// The agent's old path removed only the state directory when the save failed, leaving the
    /// container's processes and cgroups: the record in hand is destroyed first.
    @Test func failedSaveDestroysWhatWasMade() throws {
        defer { Files.removeAll(dir) }
        log.breakSave = true
        #expect { try containers.create(CreateOptions(id: "c", bundle: "/b", spec: Spec())) { _ in .namespaces } } throws: {
            ($0 as? RuntimeError)?.message.contains("save state of c") == true
        }
        #expect(log.calls.first == "create")
        #expect(log.calls.contains("destroy 42"), "the created container was not destroyed: \(log.calls)")
        #expect(!Files.exists(containers.store.directory("c")))
    }

    @Test func selectionErrorsReleaseTheID() throws {
        defer { Files.removeAll(dir) }
        #expect(throws: RuntimeError.self) {
            try containers.create(CreateOptions(id: "c", bundle: "/b", spec: Spec())) { (_) throws(RuntimeError) in
                throw RuntimeError(.config, "unknown backend")
            }
        }
        #expect(!log.calls.contains("create"))  // (the placeholder left is released: "destroy 0")
        #expect(!Files.exists(containers.store.directory("c")))
    }

    @Test func startThenPoststart() throws {
        defer { Files.removeAll(dir) }
        let trace = dir + "/trace"
        log.trace = trace
        var hooks = Hooks()
        hooks.poststart = [Self.hook("poststart", trace), Hook(path: "/bin/false"), Self.hook("poststart2", trace)]
        try saved("c", Self.created, hooks: hooks).start()
        #expect(try Files.readString(trace) == "start\npoststart\npoststart2\n")
        #expect(warnings.count == 1 && warnings[0].contains("poststart hook #1"), "\(warnings)")
        #expect(try containers.load("c").status == .running)
        #expect { try containers.load("c").start() } throws: {
            ($0 as? RuntimeError)?.message == "cannot start an already running container"
        }
    }

    @Test func deleteOfAPausedContainerThawsItAfterTheKill() throws {
        defer { Files.removeAll(dir) }
        let trace = dir + "/trace"
        var hooks = Hooks()
        hooks.poststop = [Self.hook("poststop", trace)]
        let c = try saved("c", Self.paused, hooks: hooks)
        #expect(c.status == .paused)
        #expect { try c.delete(force: false) } throws: { ($0 as? RuntimeError)?.kind == .invalidState }
        #expect(log.calls.isEmpty)
        try c.delete(force: true)
        #expect(log.calls == ["kill 9 all", "resume", "destroy 42"])
        #expect(try Files.readString(trace) == "poststop\n")
        #expect(!Files.exists(containers.store.directory("c")))
    }

    @Test func deleteOfAnUnfinishedCreateRunsNoPoststop() throws {
        defer { Files.removeAll(dir) }
        let trace = dir + "/trace"
        var r = Self.record("c")
        r.hooks = Hooks()
        r.hooks?.poststop = [Self.hook("poststop", trace)]
        r.incomplete = true
        try containers.store.reserve("c").unlock()
        try containers.store.save(r)
        log.facts = Self.running
        let c = try containers.load("c")
        #expect(c.status == .stopped)  // its creator is gone
        try c.delete(force: false)
        #expect(log.calls == ["destroy 42"])
        #expect(!Files.exists(trace))
        #expect(!Files.exists(containers.store.directory("c")))
    }

    @Test func killOfAStoppedContainerOnlyWithAll() throws {
        defer { Files.removeAll(dir) }
        let c = try saved("c", Self.stopped)
        #expect { try c.kill(signal: SIGTERM, all: false) } throws: {
            ($0 as? RuntimeError)?.message == "container c is not running"
        }
        try c.kill(signal: SIGKILL, all: true)
        #expect(log.calls == ["kill 9 all"])
    }

    @Test func execRules() throws {
        defer { Files.removeAll(dir) }
        let options = ExecOptions(process: Process())
        #expect { _ = try saved("s", Self.stopped).exec(options, spec: Spec()) } throws: {
            ($0 as? RuntimeError)?.message == "cannot exec in a stopped container"
        }
        let paused = try saved("p", Self.paused)
        #expect { _ = try paused.exec(options, spec: Spec()) } throws: {
            ($0 as? RuntimeError)?.message == "cannot exec in a paused container"
        }
        #expect(log.calls.isEmpty)
        #expect(try paused.exec(options, spec: Spec(), ignorePaused: true) == 4242)
        #expect(try saved("c", Self.created).exec(options, spec: Spec()) == 4242)
    }

    @Test func pauseAndResumeFollowTheLifecycle() throws {
        defer { Files.removeAll(dir) }
        let c = try saved("c", Self.created)
        #expect { try c.pause() } throws: { ($0 as? RuntimeError)?.message == "cannot pause container c: it is created" }
        try containers.load("c").start()
        try containers.load("c").pause()
        #expect(try containers.load("c").status == .paused)
        try containers.load("c").resume()
        #expect(log.calls == ["start", "pause", "resume"])
    }

    @Test func whatABackendDoesNotSupportIsRefusedNamingIt() throws {
        defer { Files.removeAll(dir) }
        let c = try saved("c", Self.running)
        #expect { try c.update(Resources()) } throws: {
            let e = $0 as? RuntimeError
            return e?.kind == .unsupported && e?.message == "update: not supported by the fake backend"
        }
        #expect { _ = try c.stats() } throws: { ($0 as? RuntimeError)?.kind == .unsupported }
        #expect(c.backend.reportsHostPids)
        // A stopped container: nothing to update; no processes, whatever the backend says.
        log.facts = Self.stopped
        let stopped = try containers.load("c")
        #expect { try stopped.update(Resources()) } throws: { ($0 as? RuntimeError)?.message == "container c is not running" }
        #expect(try stopped.pids() == [])
        // Loaded while running: the backend's failure is reported.
        #expect(throws: RuntimeError.self) { _ = try c.pids() }
    }
}
