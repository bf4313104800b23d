import BrigCore
import BrigLinux
import BrigOCI
import FoundationEssentials
import Glibc
import Testing

@Suite("lifecycle through the CLI", .enabled(if: Harness.isRoot, "needs root"))
struct LifecycleTests {
    func state(_ h: Harness, _ id: String) throws -> ContainerState {
        let r = h.brig(["state", id])
        #expect(r.code == 0, "state failed: \(r.err)")
        return try JSONDecoder().decode(ContainerState.self, from: Data(r.out.utf8))
    }

    /// runc parity (issue 15): --debug writes the setup stages to --log, in text and JSON, in
    /// order, so a container can be diagnosed from the log alone.
    @Test(arguments: ["text", "json"])
    func debugLogsTheSetupStages(format: String) throws {
        let h = try Harness(); defer { h.cleanup() }
        let id = Harness.uniqueID("debug")
        let log = h.dir + "/log"
        try h.write(Harness.spec(["true"]))
        let global = ["--debug", "--log", log, "--log-format", format]
        #expect(h.brig(["create", "--bundle", h.bundle, id], global: global).code == 0)
        #expect(h.brig(["start", id], global: global).code == 0)
        _ = h.brig(["delete", "--force", id])
        let lines = ((try? Files.readString(log)) ?? "").split(separator: "\n").map(String.init)
        let stages = ["parent: spawned init stage 1", "forked init stage 2", "init stage 2: mounts done",
                      "init stage 2 ready", "ran startContainer hooks and exec'd the process"]
        let found = stages.map { stage in lines.firstIndex { $0.contains(stage) } }
        #expect(found.allSatisfy { $0 != nil } && found.compactMap { $0 } == found.compactMap { $0 }.sorted(),
                "stages \(found) in \(lines)")
        struct Entry: Decodable { var level: String; var msg: String }
        for line in found.compactMap({ $0 }).map({ lines[$0] }) {
            if format == "json" {
                #expect((try? JSONDecoder().decode(Entry.self, from: Data(line.utf8)))?.level == "debug", "\(line)")
            } else {
                #expect(line.hasPrefix("time=") && line.contains(" level=debug msg=\""), "\(line)")
            }
        }
        h.assertClean(id)
    }

    @Test func createStartKillDelete() throws {
        let h = try Harness(); defer { h.cleanup() }
        let id = Harness.uniqueID("life")
        try h.write(Harness.spec(["sleep", "1000"]))
        let pidFile = h.dir + "/pid"
        let c = h.brig(["create", "--bundle", h.bundle, "--pid-file", pidFile, id])
        #expect(c.code == 0, "create: \(c.err)")
        var s = try state(h, id)
        #expect(s.status == .created)
        #expect(s.pid > 0)
        #expect(s.bundle == h.bundle)
        #expect((try? Files.readString(pidFile)) == "\(s.pid)")
        // The parked process is the container: it lives in its own pid namespace.
        let hostNS = (try? Files.readString("/proc/self/ns/pid")) ?? ""
        _ = hostNS
        #expect(ProcStat.read(pid: s.pid) != nil)
        // Forbidden: delete without force is allowed for created (runc), but kill works; start twice fails.
        #expect(h.brig(["start", id]).code == 0)
        s = try state(h, id)
        #expect(s.status == .running)
        let again = h.brig(["start", id])
        #expect(again.code != 0)
        #expect(again.err.contains("cannot start an already running container"))
        let del = h.brig(["delete", id])
        #expect(del.code != 0)
        #expect(del.err.contains("not stopped"))
        #expect(h.brig(["kill", id, "KILL"]).code == 0)
        for _ in 0..<200 where (try state(h, id)).status != .stopped { usleep(10_000) }
        s = try state(h, id)
        #expect(s.status == .stopped)
        let killStopped = h.brig(["kill", id])
        #expect(killStopped.code != 0)
        let startStopped = h.brig(["start", id])
        #expect(startStopped.err.contains("cannot start a container that has stopped"))
        #expect(h.brig(["delete", id]).code == 0)
        h.assertClean(id)
        #expect(h.brig(["state", id]).err.contains("does not exist"))
    }

    @Test func deleteForceRunningAndCreated() throws {
        let h = try Harness(); defer { h.cleanup() }
        try h.write(Harness.spec(["sleep", "1000"]))
        let running = Harness.uniqueID("force")
        #expect(h.brig(["run", "-d", "--bundle", h.bundle, running]).code == 0)
        #expect(try state(h, running).status == .running)
        #expect(h.brig(["delete", "--force", running]).code == 0)
        h.assertClean(running)
        let created = Harness.uniqueID("created")
        #expect(h.brig(["create", "--bundle", h.bundle, created]).code == 0)
        #expect(h.brig(["delete", created]).code == 0)
        h.assertClean(created)
        // --force on an unknown id succeeds, as runc's does; without it, it fails.
        #expect(h.brig(["delete", "--force", "nope"]).code == 0)
        #expect(h.brig(["delete", "nope"]).code != 0)
    }

    @Test func runReturnsExitStatus() throws {
        let h = try Harness(); defer { h.cleanup() }
        #expect(try h.run(Harness.spec(["sh", "-c", "exit 7"]), id: Harness.uniqueID("exit")).code == 7)
        // pid 1 of a pid namespace ignores SIGKILL from inside it, so run this one without one.
        var noPidNS = Harness.spec(["sh", "-c", "kill -9 $$"])
        noPidNS.linux?.namespaces?.removeAll { $0.type == "pid" }
        #expect(try h.run(noPidNS, id: Harness.uniqueID("sig")).code == 137)
        let ok = try h.run(Harness.spec(["echo", "hello from inside"]), id: Harness.uniqueID("echo"))
        #expect(ok.code == 0)
        #expect(ok.out == "hello from inside\n")
    }

    @Test func killSignalsByNameAndNumber() throws {
        let h = try Harness(); defer { h.cleanup() }
        // The shell traps USR1 and TERM (pid 1 only gets signals it handles) and reports them.
        try h.write(Harness.spec(["sh", "-c", "trap 'echo usr1 > /tmp/got' USR1; trap 'exit 42' TERM; while true; do sleep 0.05; done"]))
        let id = Harness.uniqueID("kill")
        #expect(h.brig(["run", "-d", "--bundle", h.bundle, id]).code == 0)
        let s = try state(h, id)
        #expect(h.brig(["kill", id, "SIGUSR1"]).code == 0)
        var got = ""
        for _ in 0..<100 where got.isEmpty { usleep(20_000); got = (try? Files.readString("/proc/\(s.pid)/root/tmp/got")) ?? "" }
        #expect(got == "usr1\n")
        #expect(h.brig(["kill", id, "15"]).code == 0)
        for _ in 0..<200 where (try state(h, id)).status != .stopped { usleep(10_000) }
        #expect(try state(h, id).status == .stopped)
        #expect(h.brig(["kill", id, "NOTASIGNAL"]).err.contains("unknown signal"))
        #expect(h.brig(["delete", id]).code == 0)
    }

    @Test func killAllReachesLeftoversOfAStoppedContainer() throws {
        let h = try Harness(); defer { h.cleanup() }
        // Without a pid namespace the background sleep outlives init, left in the container's cgroup.
        var spec = Harness.spec(["sh", "-c", "sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > /child"])
        spec.linux?.namespaces?.removeAll { $0.type == "pid" }
        spec.root?.readonly = false
        try h.write(spec)
        let id = Harness.uniqueID("leftover")
        #expect(h.brig(["run", "-d", "--bundle", h.bundle, id]).code == 0)
        for _ in 0..<200 where (try state(h, id)).status != .stopped { usleep(10_000) }
        #expect(try state(h, id).status == .stopped)
        let child = Int32((try? Files.readString(h.bundle + "/rootfs/child"))?.split(separator: "\n").first ?? "") ?? 0
        #expect(child > 0)
        let start = ProcStat.read(pid: child)?.startTime ?? 0
        #expect(ProcessLiveness.isAlive(pid: child, startTime: start))
        // Plain kill of a stopped container is refused; --all signals what it left behind.
        #expect(h.brig(["kill", id, "KILL"]).err.contains("is not running"))
        let all = h.brig(["kill", "--all", id, "KILL"])
        #expect(all.code == 0, "kill --all: \(all.err)")
        for _ in 0..<200 where ProcessLiveness.isAlive(pid: child, startTime: start) { usleep(10_000) }
        #expect(!ProcessLiveness.isAlive(pid: child, startTime: start))
        #expect(h.brig(["delete", id]).code == 0)
    }

    @Test func statusIsDerivedFromPidAndStartTime() throws {
        let h = try Harness(); defer { h.cleanup() }
        try h.write(Harness.spec(["sleep", "1000"]))
        let id = Harness.uniqueID("reuse")
        #expect(h.brig(["run", "-d", "--bundle", h.bundle, id]).code == 0)
        #expect(try state(h, id).status == .running)
        // Pretend the pid was reused by another process: same pid, other start time.
        let path = h.root + "/" + id + "/state.json"
        var record = try JSONDecoder().decode(ContainerRecordProbe.self, from: Data(try Files.read(path)))
        record.pidStartTime = 1
        var obj = try JSONDecoder().decode([String: AnyJSON].self, from: Data(try Files.read(path)))
        obj["pidStartTime"] = .number(1)
        try Files.writeAtomically(path, Array(try JSONEncoder().encode(obj)))
        #expect(record.pidStartTime == 1)
        #expect(try state(h, id).status == .stopped)
        #expect(try state(h, id).pid == 0)
        _ = h.brig(["delete", "--force", id])
    }

    /// A container created by a brig that wrote the previous state.json format (backend name,
    /// top-level cgroup, no handle) is still seen running and deleted with everything it holds.
    @Test func containerFromThePreviousStateFormatIsDeletable() throws {
        let h = try Harness(); defer { h.cleanup() }
        try h.write(Harness.spec(["sleep", "1000"]))
        let id = Harness.uniqueID("upgrade")
        #expect(h.brig(["run", "-d", "--bundle", h.bundle, id]).code == 0)
        let path = h.root + "/" + id + "/state.json"
        var obj = try JSONDecoder().decode([String: AnyJSON].self, from: Data(try Files.read(path)))
        guard case .object(let handle)? = obj.removeValue(forKey: "handle"), case .object(let ns)? = handle["namespaces"],
              let cgroup = ns["cgroup"], let systemd = ns["systemdCgroup"] else {
            Issue.record("state.json has no namespaces handle: \(obj.keys.sorted())")
            _ = h.brig(["delete", "--force", id])
            return
        }
        obj["backend"] = .string("namespaces")
        obj["cgroup"] = cgroup
        obj["systemdCgroup"] = systemd
        try Files.writeAtomically(path, Array(try JSONEncoder().encode(obj)))
        #expect(try state(h, id).status == .running)
        #expect(h.brig(["delete", "--force", id]).code == 0)
        h.assertClean(id)
    }

    @Test func listShowsContainers() throws {
        let h = try Harness(); defer { h.cleanup() }
        try h.write(Harness.spec(["sleep", "1000"]))
        let a = Harness.uniqueID("la"), b = Harness.uniqueID("lb")
        #expect(h.brig(["create", "--bundle", h.bundle, a]).code == 0)
        #expect(h.brig(["run", "-d", "--bundle", h.bundle, b]).code == 0)
        let q = h.brig(["list", "-q"])
        #expect(q.out.split(separator: "\n").map(String.init).sorted() == [a, b].sorted())
        let table = h.brig(["list"])
        #expect(table.out.hasPrefix("ID"))
        #expect(table.out.contains("created") && table.out.contains("running"))
        let json = h.brig(["list", "--format", "json"])
        let states = try JSONDecoder().decode([ContainerState].self, from: Data(json.out.utf8))
        #expect(states.count == 2)
    }

    @Test func specWritesRuncDefault() throws {
        let h = try Harness(); defer { h.cleanup() }
        let dir = h.dir + "/specdir"
        try Files.mkdirAll(dir)
        #expect(h.brig(["spec", "--bundle", dir]).code == 0)
        let spec = try ConfigLoader.decode(Array(try Files.read(dir + "/config.json")))
        #expect(spec == DefaultSpec.make())
        #expect(h.brig(["spec", "--bundle", dir]).err.contains("exists"))
        #expect(h.brig(["spec", "--rootless", "--bundle", h.dir]).code == 0)
        let rootless = try ConfigLoader.decode(Array(try Files.read(h.dir + "/config.json")))
        #expect(rootless.linux?.namespaces?.contains { $0.type == "user" } == true)
    }

    @Test func versionAndHelp() throws {
        let h = try Harness(); defer { h.cleanup() }
        #expect(h.brig(["--version"]).out.contains("brig version"))
        #expect(h.brig(["--help"]).out.contains("COMMANDS"))
        #expect(h.brig(["help", "create"]).out.contains("--console-socket"))
        #expect(h.brig(["kill", "--help"]).out.contains("--all"))
        #expect(h.brig(["frobnicate"]).code != 0)
    }
}

struct ContainerRecordProbe: Codable { var pidStartTime: UInt64 }

/// Just enough JSON to edit one field of a state file in a test.
enum AnyJSON: Codable {
    case string(String), number(Double), bool(Bool), object([String: AnyJSON]), array([AnyJSON]), null
    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([AnyJSON].self) { self = .array(a) }
        else { self = .object(try c.decode([String: AnyJSON].self)) }
    }
    func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .string(let s): try c.encode(s)
        case .number(let n): if n == n.rounded() && abs(n) < 1e18 { try c.encode(Int64(n)) } else { try c.encode(n) }
        case .bool(let b): try c.encode(b)
        case .object(let o): try c.encode(o)
        case .array(let a): try c.encode(a)
        case .null: try c.encodeNil()
        }
    }
}
