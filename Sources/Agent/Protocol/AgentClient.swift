import BrigLinux
import BrigOCI
import Glibc

/// The host side of one agent connection. Calls are synchronous request/response; a container
/// created (or a process exec'd) on this connection has its stdio attached here, and `relay`
/// pumps it. Thread-safe: while one thread relays, others may send requests on the same connection
/// (the relaying thread reads their responses and hands them over), which is what a single serial
/// transport needs; a second connection works as well.
public final class AgentClient: @unchecked Sendable {
    private let stream: FrameStream
    /// Guards everything below it; `changed` is signalled when a response lands or the reader leaves.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    /// Serialises whole frames onto the stream.
    private let sendMutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var nextID: UInt32 = 1
    /// One caller at a time reads the stream (a relay, or a call waiting for its response).
    private var reading = false
    /// Responses read by another caller, by request id.
    private var mailbox: [UInt32: Frame] = [:]
    /// Stream frames (stdout/stderr/exit) that arrived while a call waited for its response.
    private var pending: [Frame] = []
    private var attachedChannel: UInt32?

    /// The connection (owned by the client).
    public var fd: Int32 { stream.fd }

    /// The channel (guest pid) of the process attached to this connection, if any.
    public var attached: UInt32? { lock(); defer { unlock() }; return attachedChannel }

    /// Takes ownership of `fd` (closed on deinit) and does the version handshake. With
    /// `helloTimeout`, an agent that has not begun its hello within that many seconds is a
    /// connection error (the fd may be a socket the guest has not really accepted yet).
    public init(fd: Int32, helloTimeout: Double? = nil) throws(AgentError) {
        stream = FrameStream(fd: fd)
        pthread_mutex_init(mutex, nil); pthread_mutex_init(sendMutex, nil); pthread_cond_init(changed, nil)
        try stream.send(Frame(.hello, try AgentCoding.encode(AgentHello())))
        if let helloTimeout {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            var r: Int32
            repeat { r = poll(&p, 1, Int32(max(0, min(helloTimeout, 3600)) * 1000)) } while r < 0 && errno == EINTR
            guard r > 0 else { throw AgentError(.connection, "no hello from the agent within \(helloTimeout) s") }
        }
        let reply = try stream.receive()
        guard reply.kind == .hello else {
            throw AgentError(.protocolError, "agent answered the handshake with a \(reply.kind) frame")
        }
        let hello = try AgentCoding.decode(AgentHello.self, reply.payload)
        if let e = hello.error { throw AgentError(.versionMismatch, e) }
        guard hello.version == AgentProtocol.version else {
            throw AgentError(.versionMismatch, "agent speaks protocol version \(hello.version), brig speaks \(AgentProtocol.version)")
        }
    }

    deinit {
        close(stream.fd)
        pthread_mutex_destroy(mutex); pthread_mutex_destroy(sendMutex); pthread_cond_destroy(changed)
        mutex.deallocate(); sendMutex.deallocate(); changed.deallocate()
    }

    private func lock() { pthread_mutex_lock(mutex) }
    private func unlock() { pthread_mutex_unlock(mutex) }

    private func send(_ frame: Frame) throws(AgentError) {
        pthread_mutex_lock(sendMutex)
        defer { pthread_mutex_unlock(sendMutex) }
        try stream.send(frame)
    }

    /// Becomes the reader, or returns the response to `id` if another reader delivered it first.
    private func becomeReader(orTake id: UInt32?) -> Frame? {
        lock()
        defer { unlock() }
        while true {
            if let id, let f = mailbox.removeValue(forKey: id) { return f }
            if !reading { reading = true; return nil }
            pthread_cond_wait(changed, mutex)
        }
    }

    private func leaveReader() {
        lock(); reading = false; pthread_cond_broadcast(changed); unlock()
    }

    /// A response read by the reader: its caller's, or a connection-level error (channel 0).
    private func post(_ f: Frame) throws(AgentError) {
        if f.channel == 0, let r = try? AgentCoding.decode(AgentResponse.self, f.payload), let code = r.error {
            throw AgentError(code, r.message ?? "agent error")
        }
        lock(); mailbox[f.channel] = f; pthread_cond_broadcast(changed); unlock()
    }

    /// Sends one request and waits for its response; stream frames met meanwhile are kept for
    /// `relay`. `onHooks` answers the agent's `hooks` frame for this request (create with
    /// `hostHooks`): it runs the host's hooks and returns nil, or the failure to report.
    public func call(_ request: AgentRequest, onHooks: ((AgentHooksDue) -> String?)? = nil) throws(AgentError) -> AgentResponse {
        lock()
        let id = nextID
        nextID = nextID == UInt32.max ? 1 : nextID + 1
        unlock()
        try send(Frame(.request, channel: id, try AgentCoding.encode(request)))
        let frame: Frame
        if let f = becomeReader(orTake: id) { frame = f } else {
            defer { leaveReader() }
            frame = try readUntilResponse(id, onHooks: onHooks)
        }
        let r = try AgentCoding.decode(AgentResponse.self, frame.payload)
        if let code = r.error { throw AgentError(code, r.message ?? "agent error") }
        return r
    }

    private func readUntilResponse(_ id: UInt32, onHooks: ((AgentHooksDue) -> String?)?) throws(AgentError) -> Frame {
        while true {
            let f = try stream.receive()
            switch f.kind {
            case .response:
                if f.channel == id { return f }
                try post(f)
            case .hooks:
                guard f.channel == id, let onHooks else { throw AgentError(.protocolError, "unexpected hooks frame from agent") }
                let failure = onHooks(try AgentCoding.decode(AgentHooksDue.self, f.payload))
                try send(Frame(.hooksDone, channel: id, try AgentCoding.encode(AgentHooksDone(error: failure))))
            case .stdout, .stderr, .exit: lock(); pending.append(f); unlock()
            default: throw AgentError(.protocolError, "unexpected \(f.kind) frame from agent")
            }
        }
    }

    private func pid(_ r: AgentResponse, _ what: String) throws(AgentError) -> Int32 {
        guard let pid = r.pid, pid > 0 else { throw AgentError(.protocolError, "agent's \(what) response has no pid") }
        return pid
    }

    /// Creates the container; returns the guest pid of its parked init. Its stdio is attached here.
    /// With `r.hostHooks`, `onHooks` runs the host's hooks when the agent asks (see `call`).
    public func create(_ r: AgentCreate, onHooks: ((AgentHooksDue) -> String?)? = nil) throws(AgentError) -> Int32 {
        let p = try pid(try call(.create(r), onHooks: onHooks), "create")
        lock(); attachedChannel = UInt32(p); unlock()
        return p
    }

    public func start(id: String) throws(AgentError) { _ = try call(.start(id: id)) }

    /// Runs `process` in the container (in `subCgroups` of its cgroup, as `exec --cgroup`);
    /// returns its guest pid. Its stdio is attached here.
    public func exec(id: String, execID: String, process: Process, subCgroups: [String: String]? = nil) throws(AgentError) -> Int32 {
        let p = try pid(try call(.exec(id: id, execID: execID, process: process, terminal: process.terminal ?? false,
                                       subCgroups: subCgroups)), "exec")
        lock(); attachedChannel = UInt32(p); unlock()
        return p
    }

    public func kill(id: String, execID: String?, signal: Int32, all: Bool) throws(AgentError) {
        _ = try call(.kill(id: id, execID: execID, signal: signal, all: all))
    }

    /// Blocks until the container's init (or the exec) exits; returns its status (code, or 128+signal).
    public func wait(id: String, execID: String?) throws(AgentError) -> Int32 {
        guard let s = try call(.wait(id: id, execID: execID)).status else {
            throw AgentError(.protocolError, "agent's wait response has no status")
        }
        return s
    }

    public func state(id: String) throws(AgentError) -> AgentState {
        guard let s = try call(.state(id: id)).state else { throw AgentError(.protocolError, "agent's state response has no state") }
        return s
    }

    public func ps(id: String) throws(AgentError) -> [Int32] { try call(.ps(id: id)).pids ?? [] }

    public func resize(id: String, execID: String?, rows: UInt16, cols: UInt16) throws(AgentError) {
        _ = try call(.resize(id: id, execID: execID, rows: rows, cols: cols))
    }

    public func stats(id: String) throws(AgentError) -> AgentStats {
        guard let s = try call(.stats(id: id)).stats else { throw AgentError(.protocolError, "agent's stats response has no stats") }
        return s
    }

    public func delete(id: String, force: Bool) throws(AgentError) { _ = try call(.delete(id: id, force: force)) }
    public func configureNetwork(_ n: AgentNetwork) throws(AgentError) { _ = try call(.network(n)) }

    /// Relays this connection's attached process: `stdin` → stdin frames (EOF closes the process's
    /// stdin; pass -1 for none), stdout/stderr frames → `stdout`/`stderr`, until the process exits.
    /// Returns its exit status (code, or 128+signal). With a terminal, stdout carries the pty output.
    public func relay(stdin: Int32, stdout: Int32, stderr: Int32) throws(AgentError) -> Int32 {
        guard let channel = attached else { throw AgentError(.invalidState, "no process is attached to this connection") }
        _ = becomeReader(orTake: nil)
        defer { leaveReader() }
        var stdinOpen = stdin >= 0
        var buf = [UInt8](repeating: 0, count: AgentProtocol.chunk)
        func deliver(_ f: Frame) throws(AgentError) -> Int32? {
            switch f.kind {
            case .response:
                try post(f)
                return nil
            case .stdout, .stderr:
                let out = f.kind == .stdout ? stdout : stderr
                // A reader that went away (closed pipe) must not stop the relay.
                if f.channel == channel && out >= 0 { try? Files.writeAll(fd: out, f.payload) }
                return nil
            case .exit:
                guard f.channel == channel else { return nil }
                lock(); if attachedChannel == channel { attachedChannel = nil }; unlock()
                return try AgentCoding.decode(AgentExit.self, f.payload).status
            default:
                throw AgentError(.protocolError, "unexpected \(f.kind) frame from agent")
            }
        }
        // Only the reader appends to `pending`, and that is us now: one pass drains it.
        lock(); let early = pending; pending = []; unlock()
        for (i, f) in early.enumerated() {
            if let s = try deliver(f) {
                lock(); pending = Array(early[(i + 1)...]) + pending; unlock()
                return s
            }
        }
        while true {
            while let f = try stream.buffered() {
                if let s = try deliver(f) { return s }
            }
            var fds = [pollfd(fd: stream.fd, events: Int16(POLLIN), revents: 0)]
            if stdinOpen { fds.append(pollfd(fd: stdin, events: Int16(POLLIN), revents: 0)) }
            let n = poll(&fds, nfds_t(fds.count), -1)
            if n < 0 {
                if errno == EINTR { continue }
                throw AgentError(.system, "\(SystemError.last("poll"))")
            }
            if stdinOpen && fds[1].revents != 0 {
                let r = buf.withUnsafeMutableBytes { Glibc.read(stdin, $0.baseAddress, $0.count) }
                if r > 0 {
                    try send(Frame(.stdin, channel: channel, Array(buf[0..<r])))
                } else if r == 0 || (errno != EINTR && errno != EAGAIN) {
                    stdinOpen = false
                    try send(Frame(.closeStdin, channel: channel))
                }
            }
            if fds[0].revents != 0 {
                guard try stream.fill() else { throw AgentError(.connection, "agent connection closed before the process exited") }
            }
        }
    }
}
