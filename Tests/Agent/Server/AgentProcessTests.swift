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
        parts.removeLast(4)  // Tests/Agent/…/X.swift
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

    init(timeout: Int = 60) throws {
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
            "timeout", "\(timeout)", AgentProcess.binary, "--listen-unix", socket, "--state", dir + "/state"], env: []))
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

    /// A spec like `brig spec` makes, on the copied rootfs, running `args`. Its cgroup is named
    /// after this agent's directory, so suites running in parallel (the CLI's "c1") never share one.
    func spec(_ args: [String], id: String = "x") -> Spec {
        var s = DefaultSpec.make()
        s.linux?.cgroupsPath = "/" + dir.split(separator: "/").last! + "-" + id
        s.process?.terminal = false
        s.process?.args = args
        s.root = Root(path: "ignored", readonly: false)
        s.hostname = "agenthost"
        return s
    }

    func create(_ c: AgentClient, _ id: String, _ args: [String], terminal: Bool = false) throws(AgentError) -> Int32 {
        try c.create(AgentCreate(id: id, spec: spec(args, id: id), rootfs: .path(rootfs), terminal: terminal))
    }

    /// Relays into files; returns (status, stdout, stderr). `input` (if any) is the whole stdin.
    func relay(_ c: AgentClient, input: String? = nil) throws -> (Int32, String, String) {
        let out = dir + "/out", err = dir + "/err", inPath = dir + "/in"
        let outFD = try Files.open(out, O_WRONLY | O_CREAT | O_TRUNC), errFD = try Files.open(err, O_WRONLY | O_CREAT | O_TRUNC)
        var inFD: Int32 = -1
        if let input {
            try Files.writeAtomically(inPath, Array(input.utf8))
            inFD = try Files.open(inPath, O_RDONLY)
        }
        defer { for fd in [outFD, errFD, inFD] where fd >= 0 { close(fd) } }
        let status = try c.relay(stdin: inFD, stdout: outFD, stderr: errFD)
        return (status, try Files.readString(out), try Files.readString(err))
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
        // A request on the attached connection: the output and exit frames that arrive before
        // its (deferred) response are kept for relay.
        #expect(try c.wait(id: "c1", execID: nil) == 3)
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
        #expect(stats.memoryUsage > 0)

        // An exec with a terminal: resized by exec id, fed through the pty.
        let c3 = try agent.connect()
        var t = p
        t.args = ["sh", "-c", "read x; echo \"got $x\"; stty size"]
        t.terminal = true
        _ = try c3.exec(id: "c2", execID: "t1", process: t)
        try c3.resize(id: "c2", execID: "t1", rows: 30, cols: 90)
        let (ttyStatus, ttyOut, _) = try agent.relay(c3, input: "go\n")
        #expect(ttyStatus == 0)
        #expect(ttyOut.contains("got go"))
        #expect(ttyOut.split(whereSeparator: \.isNewline).last == "30 90")

        try c2.kill(id: "c2", execID: nil, signal: SIGKILL, all: false)
        let (killed, _, _) = try agent.relay(c1)
        #expect(killed == 128 + SIGKILL)
        try c2.delete(id: "c2", force: false)
    }

    @Test func sigtermFromASecondConnectionWhileTheFirstRelays() async throws {
        let agent = try AgentProcess()
        let c1 = try agent.connect()
        _ = try agent.create(c1, "c3", ["sh", "-c", "trap 'echo got TERM; exit 143' TERM; touch /ready-c3; while :; do sleep 0.05; done"])
        try c1.start(id: "c3")
        let relaying = Task.detached { [box = Unchecked((agent, c1))] in try box.value.0.relay(box.value.1) }
        #expect(agent.waitForFile("ready-c3"))
        let c2 = try agent.connect()
        #expect(try c2.state(id: "c3").status == .running)
        try c2.kill(id: "c3", execID: nil, signal: SIGTERM, all: false)
        let (status, out, _) = try await relaying.value
        #expect(status == 143)
        #expect(out == "got TERM\n")
        #expect(try c2.state(id: "c3").exitStatus == 143)
        try c2.delete(id: "c3", force: false)
    }

    /// A connection that does not read its chatty process's output stalls only that process (its
    /// pipe fills); other connections are served, and nothing is lost once it relays.
    @Test func anUnreadConnectionDoesNotStallTheAgent() throws {
        let agent = try AgentProcess()
        let c1 = try agent.connect()
        _ = try agent.create(c1, "c8", ["sh", "-c", "yes abcdefghi | head -c 3000000"])
        try c1.start(id: "c8")
        let c2 = try agent.connect()
        var ts = timespec(tv_sec: 0, tv_nsec: 20_000_000)
        for _ in 0..<15 {
            #expect(try c2.state(id: "c8").status == .running)
            nanosleep(&ts, nil)
        }
        let (status, out, _) = try agent.relay(c1)
        #expect(status == 0)
        #expect(out.utf8.count == 3_000_000)
        #expect(out.hasPrefix("abcdefghi\nabcdefghi\n"))
        try c2.delete(id: "c8", force: false)
    }

    /// One connection (as on a serial line): requests from another thread while it relays.
    @Test func requestsOnTheRelayingConnection() async throws {
        let agent = try AgentProcess()
        let c = try agent.connect()
        _ = try agent.create(c, "c7", ["sh", "-c", "trap 'echo bye; exit 9' USR1; echo tick; touch /ready-c7; while :; do sleep 0.05; echo tick; done"])
        try c.start(id: "c7")
        let relaying = Task.detached { [box = Unchecked((agent, c))] in try box.value.0.relay(box.value.1) }
        #expect(agent.waitForFile("ready-c7"))
        for _ in 0..<5 { #expect(try c.state(id: "c7").status == .running) }
        #expect(try c.ps(id: "c7").count >= 1)
        try c.kill(id: "c7", execID: nil, signal: SIGUSR1, all: false)
        let (status, out, _) = try await relaying.value
        #expect(status == 9)
        #expect(out.hasPrefix("tick\n"))
        #expect(out.hasSuffix("bye\n"))
        #expect(try c.state(id: "c7").status == .stopped)
        try c.delete(id: "c7", force: false)
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

        // More than a pipe holds, both ways: the agent buffers stdin instead of blocking on it.
        let big = String(repeating: "0123456789abcdef", count: 40_000) + "\n"
        _ = try agent.create(c, "c4b", ["cat"])
        try c.start(id: "c4b")
        let (bigStatus, bigOut, _) = try agent.relay(c, input: big)
        #expect(bigStatus == 0)
        #expect(bigOut.count == big.count)
        #expect(bigOut == big)
        try c.delete(id: "c4b", force: false)
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
            #expect(error.code == .usage || error.code == .config)
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
        #expect(throws: AgentError.self) { try stream.receive() }   // and hung up
    }

    @Test func garbageGetsAnErrorAndTheDoorOthersAreServed() throws {
        let agent = try AgentProcess()
        let good = try agent.connect()
        let fd = try UnixSocket.connect(agent.socket)
        defer { close(fd) }
        let stream = FrameStream(fd: fd)
        try stream.send(Frame(.hello, try AgentCoding.encode(AgentHello())))
        #expect(try stream.receive().kind == .hello)
        // Stdin for a process that is gone (relay racing an exit) is dropped; the connection stays.
        try stream.send(Frame(.stdin, channel: 999_999, [1]))
        try stream.send(Frame(.closeStdin, channel: 999_999))
        try stream.send(Frame(.request, channel: 5, try AgentCoding.encode(AgentRequest.state(id: "none"))))
        let answer = try stream.receive()
        #expect(answer.kind == .response && answer.channel == 5)
        #expect(try AgentCoding.decode(AgentResponse.self, answer.payload).error == .notFound)
        try Files.writeAll(fd: fd, [0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 1])   // a 4 GiB frame
        let reply = try stream.receive()
        #expect(reply.kind == .response)
        let r = try AgentCoding.decode(AgentResponse.self, reply.payload)
        #expect(r.error == .protocolError)
        #expect(r.message?.contains("exceeds") == true)
        do { _ = try stream.receive(); Issue.record("connection still open after garbage") } catch { #expect(error.code == .connection) }
        do { _ = try good.ps(id: "none"); Issue.record("ps of a missing container") } catch { #expect(error.code == .notFound) }
    }
}

/// Runs a program to completion; returns its exit status.
func run(_ args: [String]) throws -> Spawn.Exit {
    try Spawn.wait(try Spawn.spawn(Spawn.Options(path: args[0], args: args, env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"])))
}

@Suite(.serialized, .enabled(if: AgentProcess.isRoot, "runs containers: needs root"))
struct AgentTransportTests {
    /// `brig-agent --fd N`: one connection on an inherited fd (how vsock/serial are served); the
    /// agent exits 0 when it closes.
    @Test func servesOneInheritedConnection() throws {
        let agent = try AgentProcess()
        let (mine, theirs) = try streamPair()
        var o = Spawn.Options(path: AgentProcess.binary, args: ["brig-agent", "--fd", "3", "--state", agent.dir + "/fdstate"], env: [])
        o.fds = [(theirs, 3)]
        let pid = try Spawn.spawn(o)
        close(theirs)
        var client: AgentClient? = try AgentClient(fd: mine)
        _ = try client!.create(AgentCreate(id: "f1", spec: agent.spec(["sh", "-c", "echo fd"], id: "f1"), rootfs: .path(agent.rootfs)))
        try client!.start(id: "f1")
        let (status, out, _) = try agent.relay(client!)
        #expect(status == 0)
        #expect(out == "fd\n")
        try client!.delete(id: "f1", force: false)
        client = nil   // closes the connection
        #expect(try Spawn.wait(pid) == .exited(0))
    }

    /// `.block`: the agent mounts the device as the rootfs (here an ext4 image on a loop device).
    @Test(.enabled(if: Files.exists("/dev/loop-control") && Files.exists("/usr/sbin/mkfs.ext4")))
    func mountsABlockDeviceRootfs() throws {
        let agent = try AgentProcess()
        let image = agent.dir + "/rootfs.img"
        #expect(try run(["/usr/sbin/mkfs.ext4", "-q", "-F", "-d", agent.rootfs, image, "64M"]) == .exited(0))
        let (r, w) = try Files.pipe()
        var o = Spawn.Options(path: "/usr/sbin/losetup", args: ["losetup", "-f", "--show", image], env: [])
        o.fds = [(w, 1)]
        let pid = try Spawn.spawn(o)
        close(w)
        let device = String(decoding: try Files.read(fd: r), as: UTF8.self).split(separator: "\n").first.map(String.init) ?? ""
        close(r)
        #expect(try Spawn.wait(pid) == .exited(0))
        defer { _ = try? run(["/usr/sbin/losetup", "-d", device]) }
        let c = try agent.connect()
        _ = try c.create(AgentCreate(id: "b1", spec: agent.spec(["sh", "-c", "grep ' / ' /proc/mounts | cut -d' ' -f3"], id: "b1"),
                                     rootfs: .block(device: device, fstype: "ext4")))
        #expect(Files.exists(agent.dir + "/state/rootfs/b1/bin/sh"))
        try c.start(id: "b1")
        let (status, out, _) = try agent.relay(c)
        #expect(status == 0)
        #expect(out == "ext4\n")
        try c.delete(id: "b1", force: false)
        #expect(!Files.exists(agent.dir + "/state/rootfs/b1"))
    }
}

/// Hands a non-Sendable value to a task that is its only user from then on.
struct Unchecked<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
