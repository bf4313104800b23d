import BrigAgentProtocol
import BrigLinux
import BrigOCI
import FoundationEssentials
import Glibc
import Testing

/// A `brig-agent --listen-unix` process in a private state root, under `timeout` so that a hung
/// test ends with a connection error instead of hanging the suite; plus a copy of the busybox
/// test rootfs (scripts/make-rootfs.sh) the containers run on.
final class AgentProcess {
    static let packageRoot: String = {
        var parts = #filePath.split(separator: "/").map(String.init)
        parts.removeLast(3)
        return "/" + parts.joined(separator: "/")
    }()
    static var binary: String {
        if let b = getenv("BRIG_AGENT_BINARY") { return String(cString: b) }
        return packageRoot + "/.build/debug/brig-agent"
    }
    static var rootfsTemplate: String {
        if let r = getenv("BRIG_TEST_ROOTFS") { return String(cString: r) }
        return packageRoot + "/.cache/rootfs"
    }
    static let isRoot = getuid() == 0

    let dir: String
    let socket: String
    let rootfs: String
    let pid: pid_t

    init() throws {
        var template = Array("/tmp/brig-agent-test-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw SystemError.last("mkdtemp") }
        dir = String(cString: p)
        chmod(dir, 0o755)
        socket = dir + "/agent.sock"
        rootfs = dir + "/rootfs"
        guard Files.isDirectory(AgentProcess.rootfsTemplate + "/bin") else {
            throw AgentError(.internalError, "test rootfs missing at \(AgentProcess.rootfsTemplate): run scripts/make-rootfs.sh .cache/rootfs")
        }
        guard Files.exists(AgentProcess.binary) else { throw AgentError(.internalError, "brig-agent missing at \(AgentProcess.binary): swift build") }
        let cp = try Spawn.spawn(Spawn.Options(path: "/bin/cp", args: ["cp", "-a", AgentProcess.rootfsTemplate, rootfs], env: []))
        guard try Spawn.wait(cp) == .exited(0) else { throw AgentError(.internalError, "copy rootfs failed") }
        pid = try Spawn.spawn(Spawn.Options(path: "/usr/bin/timeout", args: [
            "timeout", "60", AgentProcess.binary, "--listen-unix", socket, "--state", dir + "/state"], env: []))
    }

    deinit {
        Glibc.kill(pid, SIGTERM)
        _ = try? Spawn.wait(pid)
        Files.removeAll(dir)
    }

    /// A new connection (the agent may still be starting).
    func connect() throws -> AgentClient {
        var ts = timespec(tv_sec: 0, tv_nsec: 5_000_000)
        for _ in 0..<1000 {
            if let fd = try? UnixSocket.connect(socket) { return try AgentClient(fd: fd) }
            nanosleep(&ts, nil)
        }
        throw AgentError(.connection, "agent did not listen on \(socket)")
    }

    /// A spec like `brig spec` makes, on the copied rootfs, running `args`.
    func spec(_ args: [String]) -> Spec {
        var s = DefaultSpec.make()
        s.process?.terminal = false
        s.process?.args = args
        s.root = Root(path: "ignored", readonly: false)
        s.hostname = "agenthost"
        return s
    }

    func create(_ c: AgentClient, _ id: String, _ args: [String], terminal: Bool = false) throws(AgentError) -> Int32 {
        try c.create(AgentCreate(id: id, spec: spec(args), rootfs: .path(rootfs), terminal: terminal))
    }

    /// Relays into pipes; returns (status, stdout, stderr). `input` (if any) is the whole stdin.
    func relay(_ c: AgentClient, input: String? = nil) throws -> (Int32, String, String) {
        let (outR, outW) = try Files.pipe(), (errR, errW) = try Files.pipe()
        var inR: Int32 = -1
        if let input {
            let (r, w) = try Files.pipe()
            try Files.writeAll(fd: w, Array(input.utf8))
            close(w)
            inR = r
        }
        let status = try c.relay(stdin: inR, stdout: outW, stderr: errW)
        close(outW); close(errW)
        if inR >= 0 { close(inR) }
        let out = String(decoding: try Files.read(fd: outR), as: UTF8.self)
        let err = String(decoding: try Files.read(fd: errR), as: UTF8.self)
        close(outR); close(errR)
        return (status, out, err)
    }

    func waitForFile(_ name: String) -> Bool {
        var ts = timespec(tv_sec: 0, tv_nsec: 5_000_000)
        for _ in 0..<2000 {
            if Files.exists(rootfs + "/" + name) { return true }
            nanosleep(&ts, nil)
        }
        return false
    }
}

@Suite(.serialized, .enabled(if: AgentProcess.isRoot, "runs containers: needs root"))
struct AgentProcessTests {
    @Test func echoAndExitStatusThroughTheAgent() throws {
        let agent = try AgentProcess()
        let c = try agent.connect()
        let pid = try agent.create(c, "c1", ["sh", "-c", "echo hi; echo oops >&2; exit 3"])
        #expect(pid > 0)
        let created = try c.state(id: "c1")
        #expect(created.status == .created)
        #expect(created.pid == pid)
        try c.start(id: "c1")
        let (status, out, err) = try agent.relay(c)
        #expect(status == 3)
        #expect(out == "hi\n")
        #expect(err == "oops\n")
        let stopped = try c.state(id: "c1")
        #expect(stopped.status == .stopped)
        #expect(stopped.exitStatus == 3)
        #expect(Files.exists(agent.dir + "/state/bundles/c1/config.json"))
        try c.delete(id: "c1", force: false)
        #expect(!Files.exists(agent.dir + "/state/bundles/c1"))
        #expect(!Files.exists(agent.dir + "/state/state/c1"))
        do { _ = try c.state(id: "c1"); Issue.record("state of a deleted container") } catch { #expect(error.code == .notFound) }
    }

    @Test func execSharesThePidNamespaceAndHostname() throws {
        let agent = try AgentProcess()
        let c1 = try agent.connect()
        let initPid = try agent.create(c1, "c2", ["sh", "-c", "touch /ready-c2; exec sleep 30"])
        try c1.start(id: "c2")
        #expect(agent.waitForFile("ready-c2"))
        #expect(try c1.state(id: "c2").status == .running)

        let c2 = try agent.connect()
        var p = agent.spec([]).process!
        p.args = ["sh", "-c", "hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo; exit 5"]
        let execPid = try c2.exec(id: "c2", execID: "e1", process: p)
        #expect(execPid > 0 && execPid != initPid)
        let (status, out, _) = try agent.relay(c2)
        #expect(status == 5)
        #expect(out == "agenthost\nsleep 30 \n")
        #expect(try c2.wait(id: "c2", execID: "e1") == 5)

        let pids = try c2.ps(id: "c2")
        #expect(pids.contains(initPid))
        let stats = try c2.stats(id: "c2")
        #expect(stats.pidsCurrent >= 1)

        try c2.kill(id: "c2", execID: nil, signal: SIGKILL, all: false)
        let (killed, _, _) = try agent.relay(c1)
        #expect(killed == 128 + SIGKILL)
        try c2.delete(id: "c2", force: false)
    }

    @Test func sigtermFromASecondConnectionReachesTheTrap() throws {
        let agent = try AgentProcess()
        let c1 = try agent.connect()
        _ = try agent.create(c1, "c3", ["sh", "-c", "trap 'echo got TERM; exit 143' TERM; touch /ready-c3; while :; do sleep 0.05; done"])
        try c1.start(id: "c3")
        #expect(agent.waitForFile("ready-c3"))
        let c2 = try agent.connect()
        try c2.kill(id: "c3", execID: nil, signal: SIGTERM, all: false)
        let (status, out, _) = try agent.relay(c1)
        #expect(status == 143)
        #expect(out == "got TERM\n")
        #expect(try c2.state(id: "c3").exitStatus == 143)
        try c2.delete(id: "c3", force: false)
    }

    @Test func stdinIsRelayedAndItsEOFEndsCat() throws {
        let agent = try AgentProcess()
        let c = try agent.connect()
        _ = try agent.create(c, "c4", ["cat"])
        try c.start(id: "c4")
        let (status, out, _) = try agent.relay(c, input: "hello\nworld\n")
        #expect(status == 0)
        #expect(out == "hello\nworld\n")
        try c.delete(id: "c4", force: false)
    }

    @Test func terminalModeGivesAPtyAndResizeReachesIt() throws {
        let agent = try AgentProcess()
        let c = try agent.connect()
        _ = try agent.create(c, "c5", ["sh", "-c", "tty; stty size"], terminal: true)
        try c.resize(id: "c5", execID: nil, rows: 40, cols: 100)
        try c.start(id: "c5")
        let (status, out, _) = try agent.relay(c)
        #expect(status == 0)
        let lines = out.split(whereSeparator: \.isNewline).map(String.init)
        #expect(lines.first?.hasPrefix("/dev/pts/") == true)
        #expect(lines.last == "40 100")
        do { try c.resize(id: "c5", execID: nil, rows: 1, cols: 1); Issue.record("resized an exited process") } catch {
            #expect(error.code == .invalidState)
        }
        try c.delete(id: "c5", force: false)
    }

    @Test func invalidSpecErrorNamesTheField() throws {
        let agent = try AgentProcess()
        let c = try agent.connect()
        do { _ = try agent.create(c, "c6", []); Issue.record("created with empty process.args") } catch {
            #expect(error.code == .config)
            #expect(error.message.contains("process.args"))
        }
        do { _ = try agent.create(c, "../x", ["true"]); Issue.record("created with id ../x") } catch {
            #expect(error.kind == .usage || error.kind == .config)
        }
        #expect(try Files.list(agent.dir + "/state/bundles").isEmpty)
        // The connection survives failed requests.
        do { _ = try c.state(id: "nope") } catch { #expect(error.code == .notFound) }
    }

    @Test func agentRejectsAnotherProtocolVersion() throws {
        let agent = try AgentProcess()
        _ = try agent.connect()   // it listens
        let fd = try UnixSocket.connect(agent.socket)
        let stream = FrameStream(fd: fd)
        defer { close(fd) }
        try stream.send(Frame(.hello, try AgentCoding.encode(AgentHello(version: 99))))
        let reply = try stream.receive()
        #expect(reply.kind == .hello)
        let hello = try AgentCoding.decode(AgentHello.self, reply.payload)
        #expect(hello.error?.contains("99") == true)
        #expect(hello.version == AgentProtocol.version)
    }
}
