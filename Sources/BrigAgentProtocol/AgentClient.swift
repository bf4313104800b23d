import BrigLinux
import BrigOCI
import Glibc

/// The host side of one agent connection. Calls are synchronous request/response; a container
/// created (or a process exec'd) on this connection has its stdio attached here, and `relay`
/// pumps it. While `relay` runs, make further requests on a second connection (the agent serves
/// many). Not thread-safe: one caller at a time.
public final class AgentClient {
    private let stream: FrameStream
    private var nextID: UInt32 = 1
    /// Stream frames (stdout/stderr/exit) that arrived while waiting for a response.
    private var pending: [Frame] = []
    /// The channel (guest pid) of the process attached to this connection, if any.
    public private(set) var attached: UInt32?

    /// Takes ownership of `fd` (closed on deinit) and does the version handshake.
    public init(fd: Int32) throws(AgentError) {
        stream = FrameStream(fd: fd)
        try stream.send(Frame(.hello, try AgentCoding.encode(AgentHello())))
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

    deinit { close(stream.fd) }

    /// Sends one request and waits for its response; stream frames met meanwhile are kept for `relay`.
    public func call(_ request: AgentRequest) throws(AgentError) -> AgentResponse {
        let id = nextID
        nextID &+= 1
        try stream.send(Frame(.request, channel: id, try AgentCoding.encode(request)))
        while true {
            let f = try stream.receive()
            switch f.kind {
            case .response:
                guard f.channel == id else { throw AgentError(.protocolError, "response to unknown request \(f.channel)") }
                let r = try AgentCoding.decode(AgentResponse.self, f.payload)
                if let code = r.error { throw AgentError(code, r.message ?? "agent error") }
                return r
            case .stdout, .stderr, .exit: pending.append(f)
            default: throw AgentError(.protocolError, "unexpected \(f.kind) frame from agent")
            }
        }
    }

    private func pid(_ r: AgentResponse, _ what: String) throws(AgentError) -> Int32 {
        guard let pid = r.pid, pid > 0 else { throw AgentError(.protocolError, "agent's \(what) response has no pid") }
        return pid
    }

    /// Creates the container; returns the guest pid of its parked init. Its stdio is attached here.
    public func create(_ r: AgentCreate) throws(AgentError) -> Int32 {
        let p = try pid(try call(.create(r)), "create")
        attached = UInt32(p)
        return p
    }

    public func start(id: String) throws(AgentError) { _ = try call(.start(id: id)) }

    /// Runs `process` in the container; returns its guest pid. Its stdio is attached here.
    public func exec(id: String, execID: String, process: Process) throws(AgentError) -> Int32 {
        let p = try pid(try call(.exec(id: id, execID: execID, process: process, terminal: process.terminal ?? false)), "exec")
        attached = UInt32(p)
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

    /// Relays this connection's attached process: `stdin` → stdin frames (EOF closes the process's
    /// stdin; pass -1 for none), stdout/stderr frames → `stdout`/`stderr`, until the process exits.
    /// Returns its exit status (code, or 128+signal). With a terminal, stdout carries the pty output.
    public func relay(stdin: Int32, stdout: Int32, stderr: Int32) throws(AgentError) -> Int32 {
        guard let channel = attached else { throw AgentError(.invalidState, "no process is attached to this connection") }
        var stdinOpen = stdin >= 0
        var buf = [UInt8](repeating: 0, count: AgentProtocol.chunk)
        func deliver(_ f: Frame) throws(AgentError) -> Int32? {
            guard f.channel == channel else { return nil }
            switch f.kind {
            case .stdout, .stderr:
                let out = f.kind == .stdout ? stdout : stderr
                // A reader that went away (closed pipe) must not stop the relay.
                if out >= 0 { try? Files.writeAll(fd: out, f.payload) }
                return nil
            case .exit:
                attached = nil
                return try AgentCoding.decode(AgentExit.self, f.payload).status
            default:
                throw AgentError(.protocolError, "unexpected \(f.kind) frame from agent")
            }
        }
        while !pending.isEmpty {
            if let s = try deliver(pending.removeFirst()) { return s }
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
                    try stream.send(Frame(.stdin, channel: channel, Array(buf[0..<r])))
                } else if r == 0 || (errno != EINTR && errno != EAGAIN) {
                    stdinOpen = false
                    try stream.send(Frame(.closeStdin, channel: channel))
                }
            }
            if fds[0].revents != 0 {
                guard try stream.fill() else { throw AgentError(.connection, "agent connection closed before the process exited") }
            }
        }
    }
}
