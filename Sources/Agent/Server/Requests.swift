import BrigAgentProtocol
import BrigCore
import BrigJSON
import BrigLinux
import BrigNamespaces
import BrigOCI
import CBrigShim
import Glibc

extension AgentServer {
    /// Runs one request. Returns nil when the response comes later (`wait` on a live process).
    func perform(_ request: AgentRequest, connection: Int32, requestID: UInt32) throws(AgentError) -> AgentResponse? {
        var r = AgentResponse()
        do {
            switch request {
            case .create(let c):
                r.pid = try create(c, connection: connection, requestID: requestID)
            case .start(let id):
                try load(id).start()
            case .exec(let id, let execID, let process, let terminal, let subCgroups):
                r.pid = try exec(id: id, execID: execID, process: process, terminal: terminal, subCgroups: subCgroups ?? [:],
                                 connection: connection)
            case .kill(let id, let execID, let signal, let all):
                guard signal >= 0 && signal < 65 else { throw RuntimeError(.usage, "invalid signal \(signal)") }  // 0: existence check
                let container = try load(id)
                if let execID {
                    let pid = try liveExec(id, execID)
                    if Glibc.kill(pid, signal) != 0 { throw RuntimeError.wrap(SystemError.last("kill \(pid)")) }
                } else {
                    try container.kill(signal: signal, all: all)
                }
            case .wait(let id, let execID):
                _ = try load(id)
                if let execID { try StateStore.validate(id: execID) }
                let c = containers[id]!
                if let execID {
                    switch c.execs[execID] {
                    case nil: throw RuntimeError(.notFound, "exec \(execID) not found in container \(id)")
                    case .exited(let code)?: r.status = code; return r
                    case .running?: break
                    }
                } else if let code = c.exitStatus, processes[c.initPid] == nil {
                    r.status = code; return r
                }
                containers[id]!.waiters.append((connection, requestID, execID))
                return nil
            case .state(let id):
                let container = try load(id)
                let (record, status) = (container.record, container.status)
                let c = containers[id]!
                let wire: AgentState.Status
                switch status {
                case .created, .creating: wire = .created
                case .running: wire = .running
                case .paused: wire = .paused
                case .stopped: wire = .stopped
                }
                r.state = AgentState(id: id, status: wire, pid: wire == .stopped ? 0 : record.pid,
                                     exitStatus: wire == .stopped ? c.exitStatus : nil)
            case .ps(let id):
                let container = try load(id)
                r.pids = ((try? container.pids()) ?? []).sorted()
            case .resize(let id, let execID, let rows, let cols):
                _ = try load(id)
                let pid = try execID.map { (e) throws(RuntimeError) in try liveExec(id, e) } ?? containers[id]!.initPid
                guard let p = processes[pid], p.terminal, p.stdin >= 0 else {
                    throw RuntimeError(.invalidState, "\(execID.map { "exec \($0)" } ?? "container \(id)") has no terminal")
                }
                if brig_set_winsize(p.stdin, rows, cols) != 0 { throw RuntimeError.wrap(SystemError.last("resize terminal")) }
            case .stats(let id):
                let container = try load(id)
                do { r.stats = AgentStats(cgroup: try container.stats(), oomKills: try? container.oomKillCount()) } catch {
                    throw RuntimeError.wrap(error, "stats of \(id)")
                }
            case .delete(let id, let force):
                try delete(id, force: force)
            case .network(let n):
                try GuestNetworkSetup.apply(n, inGuest: inGuest)
            }
        } catch let e as RuntimeError {
            throw AgentError(e)
        } catch let e as AgentError {
            throw e
        } catch {
            throw AgentError(RuntimeError.wrap(error))
        }
        return r
    }

    /// One of this agent's containers (Containers.load).
    func load(_ id: String) throws(RuntimeError) -> BrigCore.Container {
        try StateStore.validate(id: id)
        guard containers[id] != nil, Files.exists(store.directory(id)) else {
            throw RuntimeError(.notFound, "container \(id) does not exist")
        }
        return try runtime.load(id)
    }

    func liveExec(_ id: String, _ execID: String) throws(RuntimeError) -> Int32 {
        try StateStore.validate(id: execID)
        guard case .running(let pid)? = containers[id]?.execs[execID], processes[pid] != nil else {
            throw RuntimeError(.notFound, "exec \(execID) is not running in container \(id)")
        }
        return pid
    }

    func bundle(_ id: String) -> String { stateRoot + "/bundles/" + id }

    func create(_ c: AgentCreate, connection: Int32, requestID: UInt32) throws -> Int32 {
        try StateStore.validate(id: c.id)
        guard containers[c.id] == nil else { throw RuntimeError(.exists, "container \(c.id) already exists") }
        var spec = c.spec
        if spec.process != nil { spec.process?.terminal = c.terminal }
        do { try Validation.validate(spec) } catch { throw RuntimeError(.config, "invalid config: \(error)") }

        let dir = bundle(c.id)
        var blockMount: String?
        var done = false
        Files.removeAll(dir)
        try Files.mkdirAll(dir, mode: 0o700)
        defer {
            if !done {
                if let m = blockMount { umount2(m, Int32(MNT_DETACH)); rmdir(m) }
                Files.removeAll(dir)
            }
        }
        let rootfs: String
        switch c.rootfs {
        case .path(let p):
            guard p.hasPrefix("/"), Files.isDirectory(p) else { throw RuntimeError(.config, "rootfs: \(p) is not an absolute path to a directory") }
            rootfs = p
        case .block(let device, let fstype):
            guard device.hasPrefix("/dev/"), !device.contains(subsequence: ".."), !fstype.isEmpty, fstype.allSatisfy({ $0.isLetter || $0.isNumber }) else {
                throw RuntimeError(.config, "rootfs: block device \(device) with filesystem \(fstype) is not acceptable")
            }
            let m = stateRoot + "/rootfs/" + c.id
            try Files.mkdirAll(m, mode: 0o755)
            let readonly = spec.root?.readonly == true ? UInt(MS_RDONLY) : 0
            if brig_mount(device, m, fstype, readonly, nil) != 0 {
                rmdir(m)
                throw RuntimeError(.system, "rootfs: mount \(device) (\(fstype)): \(SystemError.last("mount"))")
            }
            blockMount = m
            rootfs = m
        }
        spec.root = Root(path: rootfs, readonly: spec.root?.readonly)
        try Files.writeAtomically(dir + "/config.json", try JSONEncoding.encode(spec), mode: 0o600)

        // (The config read back by exec is the copy in `dir`; the state names the host's bundle.)
        var options = CreateOptions(id: c.id, bundle: c.bundle ?? dir, spec: spec)
        if c.hostHooks == true {
            options.runtimeHooks = { [self] state in try awaitHostHooks(connection: connection, requestID: requestID, pid: state.pid) }
        }
        let io = try StdioSet(terminal: c.terminal)
        defer { io.closeChildEnds() }
        if c.terminal { options.consoleFD = io.consoleChild } else { options.stdio = io.childStdio }

        // A create whose record cannot be saved destroys what it made (Containers.create).
        let record: ContainerRecord
        do { record = try runtime.create(options) { _ in .namespaces } } catch {
            io.closeAll()
            throw error
        }
        let tracked: Tracked
        do { tracked = try io.tracked(container: c.id, execID: nil, connection: connection) } catch {
            runtime.abandon(record)
            throw error
        }
        processes[record.pid] = tracked
        containers[c.id] = Container(initPid: record.pid, blockMount: blockMount)
        done = true
        return record.pid
    }

    /// The host runs prestart/createRuntime now: tell it on the create's channel and wait for its
    /// answer on that connection. Nothing else may arrive there meanwhile (the creating client
    /// is waiting for this create); other connections wait, as for the rest of a create.
    func awaitHostHooks(connection fd: Int32, requestID: UInt32, pid: Int32) throws {
        guard let c = connections[fd] else { throw RuntimeError(.system, "the host hung up during create") }
        send(fd, Frame(.hooks, channel: requestID, try AgentCoding.encode(AgentHooksDue(pid: pid))))
        while true {
            if connections[fd] == nil { throw RuntimeError(.system, "the host hung up during create") }
            if let f = try c.stream.buffered() {
                guard f.kind == .hooksDone, f.channel == requestID else {
                    throw AgentError(.protocolError, "expected the host's hooksDone for request \(requestID), got \(f.kind)")
                }
                if let e = try AgentCoding.decode(AgentHooksDone.self, f.payload).error { throw RuntimeError(.hook, e) }
                return
            }
            var p = pollfd(fd: fd, events: Int16(POLLIN | (c.outbox.isEmpty ? 0 : POLLOUT)), revents: 0)
            if poll(&p, 1, -1) < 0 {
                if errno == EINTR { continue }
                throw RuntimeError.wrap(SystemError.last("poll"))
            }
            if p.revents & Int16(POLLOUT) != 0 { flush(fd) }
            if p.revents & ~Int16(POLLOUT) != 0, connections[fd] != nil {
                guard try c.stream.fill() else { drop(fd); throw RuntimeError(.system, "the host hung up during create") }
            }
        }
    }

    func exec(id: String, execID: String, process: Process, terminal: Bool, subCgroups: [String: String] = [:],
              connection: Int32) throws -> Int32 {
        let container = try load(id)
        try StateStore.validate(id: execID)
        try container.checkExec()
        if case .running? = containers[id]?.execs[execID] { throw RuntimeError(.exists, "exec \(execID) already runs in container \(id)") }
        var process = process
        process.terminal = terminal
        do { try Validation.validateProcess(process, field: "process") } catch { throw RuntimeError(.config, "invalid process: \(error)") }
        let spec = try ConfigLoader.decode(try Files.read(bundle(id) + "/config.json"))
        var options = ExecOptions(process: process)
        options.subCgroups = subCgroups
        let io = try StdioSet(terminal: terminal)
        defer { io.closeChildEnds() }
        if terminal { options.consoleFD = io.consoleChild } else { options.stdio = io.childStdio }
        let pid: Int32
        do { pid = try container.exec(options, spec: spec) } catch {
            io.closeAll()
            throw error
        }
        do { processes[pid] = try io.tracked(container: id, execID: execID, connection: connection) } catch {
            Glibc.kill(pid, SIGKILL)   // reaped by the loop; nobody is told of it
            throw error
        }
        containers[id]!.execs[execID] = .running(pid)
        return pid
    }

    func delete(_ id: String, force: Bool) throws {
        try load(id).delete(force: force)
        let c = containers.removeValue(forKey: id)
        for w in c?.waiters ?? [] {
            send(w.connection, Frame(.response, channel: w.requestID,
                                     (try? AgentCoding.encode(AgentResponse.failure(AgentError(.notFound, "container \(id) was deleted")))) ?? []))
        }
        if let m = c?.blockMount { umount2(m, Int32(MNT_DETACH)); rmdir(m) }
        Files.removeAll(bundle(id))
    }
}

/// The fds a new container process gets: three pipes, or a socketpair the init sends its pty
/// master over. The agent keeps the parent ends.
struct StdioSet {
    let terminal: Bool
    var pipes: [(Int32, Int32)] = []     // stdin, stdout, stderr: (read, write)
    var console: (mine: Int32, theirs: Int32) = (-1, -1)

    init(terminal: Bool) throws {
        self.terminal = terminal
        if terminal {
            var fds: [Int32] = [-1, -1]
            try sys("socketpair") { socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) }
            console = (fds[0], fds[1])
        } else {
            for _ in 0..<3 {
                do { pipes.append(try Files.pipe()) } catch { closeAll(); throw error }
            }
        }
    }

    var consoleChild: Int32 { console.theirs }
    var childStdio: [Int32] { [pipes[0].0, pipes[1].1, pipes[2].1] }

    func closeChildEnds() {
        if terminal { if console.theirs >= 0 { close(console.theirs) } }
        else { for fd in childStdio { close(fd) } }
    }

    func closeAll() {
        if terminal { if console.mine >= 0 { close(console.mine) } }
        else { for p in pipes { close(p.0); close(p.1) } }
    }

    /// The agent's side, once the process exists (with a terminal: receives the pty master).
    func tracked(container: String, execID: String?, connection: Int32) throws -> Tracked {
        if terminal {
            defer { close(console.mine) }
            let master = try UnixSocket.receiveFD(console.mine).fd
            _ = fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK)
            let input = try sys("dup pty master") { fcntl(master, F_DUPFD_CLOEXEC, 3) }
            return Tracked(container: container, execID: execID, connection: connection, terminal: true,
                           stdin: input, outputs: [master, -1])
        }
        for fd in [pipes[0].1, pipes[1].0, pipes[2].0] { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        return Tracked(container: container, execID: execID, connection: connection, terminal: false,
                       stdin: pipes[0].1, outputs: [pipes[1].0, pipes[2].0])
    }
}
