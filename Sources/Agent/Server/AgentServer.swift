import BrigAgentProtocol
import BrigCore
import BrigLinux
import BrigNamespaces
import BrigOCI
import CBrigShim
import Glibc

/// The guest side: serves agent connections in one poll loop (no threads, so nothing runs between
/// fork and exec), runs containers with `NamespacesBackend`, relays their stdio, reaps them as
/// subreaper (or PID 1) and reports exit statuses.
///
/// State root layout: `state/` (a `StateStore`), `bundles/<id>/config.json`, `rootfs/<id>` (mount
/// point of a `.block` rootfs). Unchecked Sendable: only the loop's thread ever touches it (the
/// create hook callback runs on that thread, inside the create).
public final class AgentServer: @unchecked Sendable {
    public let stateRoot: String
    let store: StateStore
    let backend: NamespacesBackend
    /// The agent's containers; it reaps its children itself (the loop's SIGCHLD).
    var runtime: Containers {
        var c = Containers(store: store) { [backend] _ in backend }
        c.reapsChildren = false
        return c
    }
    /// Requests a connection may have in flight is 1 (synchronous); frames are bounded by the protocol.
    var connections: [Int32: Connection] = [:]
    /// Tracked processes by guest pid: container inits and exec'd processes.
    var processes: [Int32: Tracked] = [:]
    var containers: [String: Container] = [:]
    var listenFD: Int32 = -1
    var signalFD: Int32 = -1
    /// `serve(fd:)` ends when its only connection closes.
    var stopWhenIdle = false
    /// Started by a guest's PID 1 (brig-agent's main): only then does `network` configure
    /// interfaces — never the host's, from a host agent.
    public var inGuest = false

    /// - Parameters:
    ///   - stateRoot: where bundles, the state store and block mounts go (created if missing).
    ///   - executable: the binary re-exec'd as `init` (default: NamespacesBackend's sealed copy of
    ///     this binary, so `brig-agent init` runs the container's init stage).
    public init(stateRoot: String = "/run/brig-agent", executable: String? = nil) throws(AgentError) {
        self.stateRoot = stateRoot
        store = StateStore(root: stateRoot + "/state")
        backend = NamespacesBackend(executable: executable)
        do {
            // The root and rootfs/ only traversable by others: a container in a user namespace
            // (its root a mapped, unprivileged uid) must reach its rootfs mount below them.
            for d in [stateRoot, stateRoot + "/rootfs"] { try Files.mkdirAll(d, mode: 0o711) }
            for d in [store.root, stateRoot + "/bundles"] { try Files.mkdirAll(d, mode: 0o700) }
        } catch { throw AgentError(.system, "\(error)") }
        // The container's first-stage init exits once it forked; its child must become ours.
        _ = brig_set_child_subreaper()
        signal(SIGPIPE, SIG_IGN)
        let sigs: [Int32] = [SIGCHLD]
        signalFD = sigs.withUnsafeBufferPointer { brig_signalfd($0.baseAddress, Int32($0.count)) }
        guard signalFD >= 0 else { throw AgentError(.system, "\(SystemError.last("signalfd"))") }
    }

    /// Serves one connection on an inherited fd (vsock, serial line, socketpair) until it closes.
    public func serve(fd: Int32) throws(AgentError) {
        adopt(fd)
        stopWhenIdle = true
        try loop()
    }

    /// Accepts connections on a Unix socket path forever (the host transport).
    public func listen(unixPath: String) throws(AgentError) {
        unlink(unixPath)
        do { listenFD = try UnixSocket.listen(unixPath) } catch { throw AgentError(.system, "\(error)") }
        try loop()
    }

    // MARK: - The loop

    func loop() throws(AgentError) {
        while true {
            if stopWhenIdle && connections.isEmpty { return }
            var fds: [pollfd] = [pollfd(fd: signalFD, events: Int16(POLLIN), revents: 0)]
            if listenFD >= 0 { fds.append(pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)) }
            // A connection whose process does not read its stdin is not read further (backpressure).
            let stalled = Set(processes.values.filter { $0.pendingInput.count > AgentServer.inputHighWater }.compactMap(\.connection))
            for (fd, c) in connections {
                let events = (stalled.contains(fd) || c.closing ? 0 : POLLIN) | (c.outbox.isEmpty ? 0 : POLLOUT)
                if events != 0 { fds.append(pollfd(fd: fd, events: Int16(events), revents: 0)) }
            }
            for p in processes.values {
                // Output waits in its pipe while the connection it goes to is not read (backpressure).
                if let fd = p.connection, let c = connections[fd], c.outbox.count > AgentServer.outputHighWater { continue }
                for fd in p.outputs where fd >= 0 { fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
                if p.stdin >= 0 && !p.pendingInput.isEmpty { fds.append(pollfd(fd: p.stdin, events: Int16(POLLOUT), revents: 0)) }
            }
            if poll(&fds, nfds_t(fds.count), -1) < 0 {
                if errno == EINTR { continue }
                throw AgentError(.system, "\(SystemError.last("poll"))")
            }
            for p in fds where p.revents != 0 {
                if p.fd == signalFD { _ = brig_signalfd_read(signalFD); reap() }
                else if p.fd == listenFD { accept() }
                else if connections[p.fd] != nil {
                    if p.revents & Int16(POLLOUT) != 0 { flush(p.fd) }
                    if p.revents & ~Int16(POLLOUT) != 0 && connections[p.fd] != nil { readConnection(p.fd) }
                }
                else if p.events == Int16(POLLOUT) {
                    if let pid = processes.first(where: { $0.value.stdin == p.fd })?.key { flushInput(pid) }
                } else { pumpOutput(p.fd) }
            }
        }
    }

    func accept() {
        let fd = brig_accept(listenFD)
        guard fd >= 0 else { return }
        // Over vsock, only the host (CID 2: our own VMM) may talk to the agent — not a process
        // inside the guest reaching it over a local vsock transport.
        let cid = brig_vsock_peer_cid(fd)
        if cid != -2 && cid != Self.hostCID {
            close(fd)
            return
        }
        adopt(fd)
    }

    static let hostCID: Int64 = 2

    func drop(_ fd: Int32) {
        guard connections.removeValue(forKey: fd) != nil else { return }
        close(fd)
        for (pid, p) in processes where p.connection == fd { processes[pid]?.connection = nil }
    }

    /// Connections are non-blocking: a peer that does not read never stalls the loop.
    func adopt(_ fd: Int32) {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        connections[fd] = Connection(fd: fd)
    }

    /// Queues a frame for the connection (nowhere if it is gone) and writes what the peer takes.
    func send(_ fd: Int32?, _ frame: Frame) {
        guard let fd, let c = connections[fd], !c.closing else { return }
        c.outbox += frame.encoded()
        flush(fd)
    }

    func flush(_ fd: Int32) {
        guard let c = connections[fd] else { return }
        while !c.outbox.isEmpty {
            let n = c.outbox.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n > 0 { c.outbox.removeFirst(n); continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && errno == EAGAIN { return }
            drop(fd); return
        }
        if c.closing { drop(fd) }
    }

    /// Closes the connection once what is queued for it is written.
    func hangUp(_ fd: Int32) {
        guard let c = connections[fd] else { return }
        c.closing = true
        flush(fd)
    }

    func readConnection(_ fd: Int32) {
        guard let c = connections[fd] else { return }
        do {
            guard try c.stream.fill() else { drop(fd); return }
            while let f = try c.stream.buffered() {
                try handle(f, on: c)
                if connections[fd] == nil || c.closing { return }
            }
        } catch {
            // A peer that breaks the protocol gets one error frame, then the door.
            switch error.code {
            case .protocolError:
                send(fd, Frame(.response, (try? AgentCoding.encode(AgentResponse.failure(error))) ?? []))
                hangUp(fd)
            case .versionMismatch: hangUp(fd)   // after the hello that says why
            default: drop(fd)
            }
        }
    }

    func handle(_ f: Frame, on c: Connection) throws(AgentError) {
        if !c.greeted {
            guard f.kind == .hello else { throw AgentError(.protocolError, "expected a hello frame, got \(f.kind)") }
            let hello = try AgentCoding.decode(AgentHello.self, f.payload)
            guard hello.version == AgentProtocol.version else {
                let msg = "brig speaks agent protocol version \(hello.version), this agent speaks \(AgentProtocol.version)"
                send(c.fd, Frame(.hello, try AgentCoding.encode(AgentHello(error: msg))))
                throw AgentError(.versionMismatch, msg)
            }
            send(c.fd, Frame(.hello, try AgentCoding.encode(AgentHello())))
            c.greeted = true
            return
        }
        switch f.kind {
        case .request:
            let request = try AgentCoding.decode(AgentRequest.self, f.payload)
            reap()   // so `state` and `wait` see an exit that happened just now
            var response: AgentResponse?
            do { response = try perform(request, connection: c.fd, requestID: f.channel) } catch {
                response = .failure(error)
            }
            if let response { send(c.fd, Frame(.response, channel: f.channel, try AgentCoding.encode(response))) }
        case .stdin, .closeStdin:
            // Stdin for a process that already exited (the client's relay races the exit) or that
            // is not attached here has nowhere to go: dropped, the connection stays.
            guard let pid = Int32(exactly: f.channel), var p = processes[pid], p.connection == c.fd else { return }
            // A pty has no EOF of its own: closing it would hang up the process, so that is ignored.
            if f.kind == .closeStdin { p.closeInputWhenDrained = !p.terminal } else if p.stdin >= 0 { p.pendingInput += f.payload }
            processes[pid] = p
            flushInput(pid)
        default:
            throw AgentError(.protocolError, "unexpected \(f.kind) frame from brig")
        }
    }

    /// Stdin bytes buffered for one process beyond which its connection is not read.
    static let inputHighWater = 1 << 20
    /// Bytes queued for a connection beyond which its processes' output stays in their pipes.
    static let outputHighWater = 1 << 20

    /// Writes what the process's stdin takes without blocking; closes it once drained if asked.
    func flushInput(_ pid: Int32) {
        guard var p = processes[pid], p.stdin >= 0 else { return }
        while !p.pendingInput.isEmpty {
            let n = p.pendingInput.withUnsafeBytes { Glibc.write(p.stdin, $0.baseAddress, $0.count) }
            if n > 0 { p.pendingInput.removeFirst(n); continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && errno == EAGAIN { break }
            p.pendingInput = []   // the process closed its stdin (EPIPE): the data has nowhere to go
        }
        if p.pendingInput.isEmpty && p.closeInputWhenDrained { close(p.stdin); p.stdin = -1 }
        processes[pid] = p
    }

    // MARK: - Output and exits

    func pumpOutput(_ fd: Int32) {
        guard let (pid, p) = processes.first(where: { $0.value.outputs.contains(fd) }) else { return }
        let kind: FrameKind = fd == p.outputs[1] ? .stderr : .stdout
        var buf = [UInt8](repeating: 0, count: AgentProtocol.chunk)
        let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        if n > 0 { send(p.connection, Frame(kind, channel: UInt32(pid), Array(buf[0..<n]))); return }
        if n < 0 && (errno == EINTR || errno == EAGAIN) { return }
        // EOF (or EIO from a pty whose last slave closed): stop watching it.
        close(fd)
        processes[pid]?.outputs = p.outputs.map { $0 == fd ? -1 : $0 }
    }

    func reap() {
        while true {
            var status: Int32 = 0
            let pid = brig_waitpid(-1, &status, WNOHANG)
            if pid <= 0 { return }
            guard let p = processes.removeValue(forKey: pid) else { continue }
            let code = Spawn.decode(status).code
            // The process is gone: what it wrote is in the pipe already; forward it, then the exit.
            for fd in p.outputs where fd >= 0 {
                var buf = [UInt8](repeating: 0, count: AgentProtocol.chunk)
                while true {
                    let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                    if n <= 0 { break }
                    send(p.connection, Frame(fd == p.outputs[1] ? .stderr : .stdout, channel: UInt32(pid), Array(buf[0..<n])))
                }
                close(fd)
            }
            if p.stdin >= 0 { close(p.stdin) }
            send(p.connection, Frame(.exit, channel: UInt32(pid), (try? AgentCoding.encode(AgentExit(status: code))) ?? []))
            if var c = containers[p.container] {
                if let execID = p.execID { c.execs[execID] = .exited(code) } else { c.exitStatus = code }
                for w in c.waiters where w.execID == p.execID {
                    var r = AgentResponse(); r.status = code
                    send(w.connection, Frame(.response, channel: w.requestID, (try? AgentCoding.encode(r)) ?? []))
                }
                c.waiters.removeAll { $0.execID == p.execID }
                containers[p.container] = c
            }
        }
    }
}

/// One client connection.
final class Connection {
    let fd: Int32
    let stream: FrameStream
    var greeted = false
    /// Encoded frames not yet taken by the peer.
    var outbox: [UInt8] = []
    /// Hung up by us: nothing more is read; closed once `outbox` is written.
    var closing = false
    init(fd: Int32) { self.fd = fd; stream = FrameStream(fd: fd) }
}

/// A process the agent started and will reap.
struct Tracked {
    var container: String
    var execID: String?
    /// The connection its stdio and exit event go to (nil once that connection closed).
    var connection: Int32?
    var terminal: Bool
    /// Where stdin frames go: a pipe's write end, or a dup of the pty master (also used to resize).
    var stdin: Int32
    /// Stdin frames not yet taken by the process, and whether stdin closes after them.
    var pendingInput: [UInt8] = []
    var closeInputWhenDrained = false
    /// [stdout, stderr] read ends (pty master and -1 with a terminal); -1 once at EOF.
    var outputs: [Int32]
}

/// What the agent remembers about a container beyond its `ContainerRecord`.
struct Container {
    enum Exec { case running(Int32), exited(Int32) }
    var initPid: Int32
    var exitStatus: Int32?
    var execs: [String: Exec] = [:]
    var waiters: [(connection: Int32, requestID: UInt32, execID: String?)] = []
    var blockMount: String?
}
