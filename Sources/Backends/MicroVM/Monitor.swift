import BrigCore
import BrigJSON
import BrigLinux
import BrigOCI
import BrigVMM
import CBrigShim
import Glibc
import Synchronization

/// `brig vm-monitor FILE`: the host process behind one guest process (see MonitorConfig).
/// Exits with the guest process's exit status (code, or 128+signal).
public enum Monitor {
    /// Signals forwarded to the guest process; SIGWINCH resizes its terminal.
    static let forwarded: [Int32] = [SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM, SIGCONT, SIGWINCH]

    public static func main(_ args: [String]) -> Never {
        guard let path = args.first else { fail("usage: brig vm-monitor CONFIG") }
        let config: MonitorConfig
        do {
            config = try JSONDecoding.decode(MonitorConfig.self, from: try Files.read(path))
        } catch { fail("vm-monitor: reading \(path): \(error)") }
        // Not one thread or process before the creator has placed us in the container's cgroup;
        // a creator gone before that (killed) never will: nothing was started, nothing to undo.
        if config.awaitPlacement == true {
            let line = Files.readLine(fd: MonitorConfig.syncFD, max: 64)
            guard line.end == .newline, line.text == "placed" else { exit(125) }
        }
        _ = setsid()
        signal(SIGPIPE, SIG_IGN)
        // The sync pipe and console socket must not leak into the agent or the VM's helpers.
        for fd in [MonitorConfig.syncFD, MonitorConfig.consoleFD] { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        // Signals are taken by one thread with sigwait; every other thread blocks them.
        var set = sigset_t()
        sigemptyset(&set)
        for s in forwarded { sigaddset(&set, s) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
        let m = MonitorRun(config: config, signals: set)
        exit(m.run())
    }

    static func fail(_ message: String) -> Never {
        report("error \(message)")
        exit(125)
    }

    /// One line to the creator on fd 3 (then closed): `ok <guest pid>` or `error <message>`.
    static func report(_ line: String) {
        guard fcntl(MonitorConfig.syncFD, F_GETFD) >= 0 else { return }
        try? Files.writeAll(fd: MonitorConfig.syncFD, Array((oneLine(line) + "\n").utf8))
        close(MonitorConfig.syncFD)
    }

    /// The text with every CR and LF byte a space (a guest console's lines end in CRLF, which
    /// Swift's Character-wise split does not see as "\n").
    static func oneLine(_ text: String) -> String {
        String(decoding: text.utf8.map { $0 == 10 || $0 == 13 ? 32 : $0 }, as: UTF8.self)
    }

    /// Asks the creator (fd 3 is a stream socket) to run the host's prestart/createRuntime hooks
    /// now: `hooks <guest pid>`, answered `ok` or `error <message>`. Returns nil or the failure.
    static func askForHooks(guestPid: Int32) -> String? {
        do { try Files.writeAll(fd: MonitorConfig.syncFD, Array("hooks \(guestPid)\n".utf8)) } catch {
            return "asking brig to run the runtime hooks: \(error)"
        }
        let reply = Files.readLine(fd: MonitorConfig.syncFD, max: 1 << 16)
        if reply.end == .newline && reply.text == "ok" { return nil }
        if reply.end == .newline && reply.text.hasPrefix("error ") { return String(reply.text.dropFirst(6)) }
        return "brig went away while the runtime hooks ran"
    }
}

/// What the VM thread and the boot (main) thread agree on: once the boot reported success the VM
/// thread reports the VM's end itself; before that, it leaves the report to the boot, which
/// adds the console (and wakes the boot from a read on the agent connection).
struct BootPhase {
    var stopped: StopReason?
    var reported = false
    var agentFD: Int32 = -1
}

final class MonitorRun: @unchecked Sendable {
    let config: MonitorConfig
    let signals: sigset_t
    var machine: VirtualMachine?
    var agentPid: pid_t = 0
    var slave: Int32 = -1
    let phase = Mutex(BootPhase())
    /// The agent answered the hello: from then on a failure is the guest's answer, not the boot's.
    var agentAnswered = false
    /// The VMM's own record of why the VM stops (kvm). `phase.stopped` is set only once the VM
    /// thread's `run()` returned, after the vsock device closed the agent connection: an EOF
    /// read there in between is the VM's stop, which this already knows.
    var vmStop: () -> StopReason? = { nil }

    /// Why the VM stopped or is stopping, if it is.
    func vmStopped() -> StopReason? { phase.withLock { $0.stopped } ?? vmStop() }

    init(config: MonitorConfig, signals: sigset_t) { self.config = config; self.signals = signals }

    /// Why the agent cannot come up any more: the VM stopped, or the host agent exited.
    func gone() -> String? {
        if let r = vmStopped() { return "the VM stopped (\(r))" }
        if agentPid > 0 {
            var status: Int32 = 0
            if waitpid(agentPid, &status, WNOHANG) == agentPid {
                agentPid = 0
                return "brig-agent exited (\(Spawn.decode(status)))"
            }
        }
        return nil
    }

    /// The wait for the agent's hello: the container's deadline while the VM boots, a short one
    /// for an exec (its agent is up).
    func waiter() -> AgentWaiter {
        let endpoint = config.endpoint
        let booting: Bool
        if case .container = config.role { booting = true } else { booting = false }
        var w = AgentWaiter(timeout: booting ? config.plan?.agentTimeout ?? MicroVMDefaults.agentTimeout : 10,
                            connect: { (t: Double) throws(ConnectFailure) -> Int32 in try endpoint.connectOnce(timeout: t) })
        if booting {
            w.gone = { [self] in gone() }
            w.hint = "; a slow (e.g. nested) host needs more: set \(MicroVMDefaults.timeoutVariable) or the annotation \(MicroVMDefaults.timeoutAnnotation) (seconds)"
        }
        return w
    }

    func run() -> Int32 {
        let t0 = monotonicSeconds()
        let client: AgentSession
        do {
            try bringUpAgent()
            watchCreator()
            var w = waiter()
            client = try w.session()
            agentAnswered = true
            timing("agent-ready-ms", monotonicSeconds() - t0)
            record("agent-attempts", w.attempts)
            // A VM that stops from now on wakes us from the agent connection.
            let fd = client.client.fd
            if let r = phase.withLock({ p -> StopReason? in p.agentFD = fd; return p.stopped }) {
                throw RuntimeError(.system, "the VM stopped (\(r))")
            }
            let guestPid = try client.begin(config, hostHooks: { Monitor.askForHooks(guestPid: $0) })
            if config.terminal {
                try setUpTerminal()
                // As with runc, a terminal process does not keep the caller's stdio: an engine
                // that captures the runtime's output waits for those pipes to close.
                let null = open("/dev/null", O_RDWR | O_CLOEXEC)
                if null >= 0 { for fd: Int32 in 0...2 { dup2(null, fd) }; close(null) }
            }
            if let r = phase.withLock({ p -> StopReason? in
                let stopped = p.stopped ?? vmStop()
                if stopped == nil { p.reported = true; p.agentFD = -1 }
                return stopped
            }) { throw RuntimeError(.system, "the VM stopped (\(r))") }
            Monitor.report("ok \(guestPid)")
        } catch {
            let line = bootFailure(error)
            teardown()
            Monitor.report(line)
            return 125
        }
        startSignalThread()
        let result: Result<Int32, RuntimeError>
        do throws(RuntimeError) {
            result = .success(config.terminal ? try client.relay(stdin: slave, stdout: slave, stderr: slave)
                                              : try client.relay(stdin: 0, stdout: 1, stderr: 2))
        } catch { result = .failure(error) }
        let status = relayEnded(result)
        teardown()
        return status
    }

    /// The creator's `error` line for a failed boot or create.
    func bootFailure(_ error: any Error) -> String {
        var e = RuntimeError.wrap(error)
        if let r = vmStopped(), !e.message.contains(subsequence: "the VM stopped") {
            e = RuntimeError(.system, "the VM stopped (\(r)): \(e.message)")
        }
        return "error [\(AgentSession.kindName(e.kind))] \(diagnose(e))"
    }

    /// Records why the relay ended; the monitor's exit status.
    func relayEnded(_ result: Result<Int32, RuntimeError>) -> Int32 {
        switch result {
        case let .success(status):
            noteExit("the container exited: status \(status)")
            return status
        case let .failure(error):
            // The VM stopping closes the connection (as the VM thread would report it).
            if let r = vmStopped() {
                noteExit("the VM stopped: \(r) (the agent connection: \(error.message))")
                return Self.vmEndStatus(r)
            }
            // The agent connection broke with the container still running: it goes with its VM.
            noteExit("the agent connection broke: \(error.message)")
            return 255
        }
    }

    /// The monitor's status when its VM ended before the container's exit was relayed.
    static func vmEndStatus(_ r: StopReason) -> Int32 { r == .powerOff(status: 0) || r == .reset ? 255 : 137 }

    /// Why a container's monitor ended, one line in the state dir's `monitor.exit` (a container
    /// found stopped is explained there; the VM's own end is also in `vm-stopped` once the VM
    /// thread gets to write it).
    func noteExit(_ why: String) {
        guard case .container = config.role else { return }
        _ = try? Files.write(config.stateDir + "/monitor.exit", why + "\n", flags: O_WRONLY | O_CREAT | O_TRUNC)
    }

    /// kvm: builds and boots the VM on its own thread. host-agent: starts brig-agent.
    func bringUpAgent() throws(RuntimeError) {
        guard case .container = config.role else { return }
        switch config.mode {
        case .hostAgent:
            guard let exe = config.agentExecutable else { throw RuntimeError(.internalError, "no agent executable") }
            let sock = MonitorConfig.agentSocketPath(config.stateDir)
            unlink(sock)
            do {
                let log = try Files.open(config.stateDir + "/agent.log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC)
                let null = try Files.open("/dev/null", O_RDWR | O_CLOEXEC)
                // The agent stands for a guest: the host's crash-test points are not its own (it
                // runs the core's create too, and would kill itself at them).
                let env = Env.all().filter { !$0.hasPrefix(CrashPoint.modeVariable + "=") && !$0.hasPrefix(CrashPoint.pointVariable + "=") }
                var o = Spawn.Options(path: exe, args: [exe, "--listen-unix", sock, "--state", config.stateDir + "/agent"],
                                      env: env)
                o.fds = [(null, 0), (log, 1), (log, 2)]
                agentPid = try Spawn.spawn(o)
                close(log); close(null)
                try Files.writeAtomically(config.stateDir + "/agent.pid", Array("\(agentPid)".utf8))
            } catch { throw RuntimeError(.system, "starting brig-agent \(exe): \(error)") }
        case .kvm:
            guard let plan = config.plan, let disk = config.diskImage else { throw RuntimeError(.internalError, "no VM plan") }
            var vm = VMConfig(kernelPath: plan.kernel)
            vm.initrdPath = plan.initrd
            vm.disks = [.init(path: disk, readOnly: plan.readOnlyRoot)]
            vm.memoryBytes = plan.memoryBytes
            vm.cpus = plan.cpus
            vm.cmdline = plan.cmdline()
            vm.vsock = VsockConfig(guestCID: MonitorConfig.guestCID, udsPath: MonitorConfig.vsockPath(config.stateDir))
            vm.net = plan.network?.netConfig
            vm.fs = plan.shares.map { VMConfig.Share(path: $0.source, readOnly: $0.readOnly, recursive: $0.recursive) }
            vm.fsTag = GuestShares.tag
            vm.freePageReporting = Env.get("BRIG_VM_FREE_PAGE_REPORTING") != "0"
            let console = open(config.stateDir + "/console.log", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            if console >= 0 { vm.serialFD = console }
            let machine: VirtualMachine
            do { machine = try VirtualMachine(vm) } catch { throw RuntimeError(.system, "starting the VM: \(error)") }
            self.machine = machine
            vmStop = { [machine] in machine.stopReason }
            try plan.network?.connect() // the tap exists now; the jail below leaves this namespace
            // Confined before any thread starts, so the vCPU, vsock, relay and signal threads
            // all inherit the namespaces and the filter.
            if !VMMJail.disabledByEnvironment {
                let t = monotonicSeconds()
                do { try VMMJail.apply() } catch { throw RuntimeError(.system, "confining the VMM (\(VMMJail.disableVariable)=0 disables): \(error)") }
                timing("vmm-jail-ms", monotonicSeconds() - t)
            }
            Threads.detach { [self] in
                let reason = machine.run()
                // Still booting: the boot reports it (with the console) once its wait or read ends.
                let booting = phase.withLock { p -> Bool in
                    p.stopped = reason
                    if !p.reported && p.agentFD >= 0 { shutdown(p.agentFD, Int32(SHUT_RDWR)) }
                    return !p.reported
                }
                if booting { return }
                // The guest went away. If the container's exit was relayed, the main thread is
                // already exiting; otherwise the container died with its VM.
                usleep(200_000)
                let message = "the VM stopped: \(reason)"
                Monitor.report("error \(message); guest console: \(consoleTail())")
                _ = try? Files.write(config.stateDir + "/vm-stopped", message, flags: O_WRONLY | O_CREAT | O_TRUNC)
                exit(Self.vmEndStatus(reason))
            }
        }
    }

    /// Until this monitor has reported, its creator (`brig create`/`exec`) waits on the other end
    /// of fd 3. A creator that dies first (SIGKILL at any point) will never report or record the
    /// container, so nothing would ever stop this monitor and its VM: it tears down and exits.
    /// (Started after the VMM's confinement, which every thread must share.)
    func watchCreator() {
        let fd = fcntl(MonitorConfig.syncFD, F_DUPFD_CLOEXEC, 10)
        guard fd >= 0 else { return }
        Threads.detach { [self] in
            // POLLRDHUP only: the creator's replies (to `hooks`) are the main thread's to read.
            var p = pollfd(fd: fd, events: Int16(0x2000), revents: 0)
            while poll(&p, 1, -1) < 0 && errno == EINTR {}
            close(fd)
            guard !phase.withLock({ $0.reported }) else { return }
            noteExit("its creator went away before the report")
            teardown()
            exit(125)
        }
    }

    /// Host pty for a guest terminal: master to the console socket, slave (raw) is what we relay.
    func setUpTerminal() throws(RuntimeError) {
        do {
            let master = try Files.open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC)
            try sys("unlockpt") { brig_unlockpt(master) }
            var name = [CChar](repeating: 0, count: 64)
            try sys("ptsname") { brig_ptsname(master, &name, name.count) }
            // Without O_NOCTTY: the slave becomes our controlling terminal, so SIGWINCH reaches us.
            slave = try sys("open pty") { open(name, O_RDWR | O_CLOEXEC) }
            _ = brig_tiocsctty(slave)
            var t = termios()
            if tcgetattr(slave, &t) == 0 { cfmakeraw(&t); tcsetattr(slave, TCSANOW, &t) }
            if case let .container(spec, _) = config.role, let size = spec.process?.consoleSize {
                _ = brig_set_winsize(slave, UInt16(clamping: size.height), UInt16(clamping: size.width))
            }
            let sock: Int32
            if config.consoleOnFD4 { sock = MonitorConfig.consoleFD } else if let path = config.consoleSocket {
                sock = try UnixSocket.connect(path)
            } else { throw RuntimeError(.usage, "a terminal needs a console socket") }
            try UnixSocket.sendFD(sock, master, "/dev/ptmx")
            close(sock); close(master)
        } catch let e as RuntimeError { throw e } catch { throw RuntimeError(.system, "setting up the terminal: \(error)") }
    }

    /// Forwards signals to the guest process and window-size changes to its terminal.
    func startSignalThread() {
        let config = self.config, slave = self.slave
        var set = signals
        Threads.detach {
            while true {
                var sig: Int32 = 0
                guard sigwait(&set, &sig) == 0 else { continue }
                guard let c = try? config.endpoint.session(timeout: 0) else { continue }
                if sig == SIGWINCH {
                    var rows: UInt16 = 0, cols: UInt16 = 0
                    if slave >= 0, brig_get_winsize(slave, &rows, &cols) == 0 {
                        try? c.resize(id: config.id, execID: config.execID, rows: rows, cols: cols)
                    }
                } else {
                    try? c.client.kill(id: config.id, execID: config.execID, signal: sig, all: false)
                }
            }
        }
    }

    func teardown() {
        if let machine { machine.requestStop(.powerOff(status: 0)) }
        if agentPid > 0 {
            // The host agent's container lives in host cgroups: delete it (a guest's die with the VM).
            if let c = try? config.endpoint.session(timeout: 0) {
                try? c.delete(id: config.id, force: true)
            }
            kill(agentPid, SIGTERM)
            if (try? Spawn.wait(agentPid, timeout: 2)) == nil { kill(agentPid, SIGKILL); _ = try? Spawn.wait(agentPid) }
            unlink(config.stateDir + "/agent.pid")
            agentPid = 0
        }
    }

    func consoleTail() -> String {
        let bytes = (try? Files.read(config.stateDir + "/console.log")) ?? []
        let tail = String(decoding: bytes.suffix(1000), as: UTF8.self)
        return tail.isEmpty ? "(empty)" : tail
    }

    func diagnose(_ e: RuntimeError) -> String {
        let booting: Bool
        if case .container = config.role { booting = config.mode == .kvm } else { booting = false }
        return Self.failureMessage(e, booting: booting, agentAnswered: agentAnswered,
                                   vmStopped: vmStopped() != nil, console: consoleTail)
    }

    /// What `create` reports when a VM's monitor fails before the container runs. Until the agent
    /// answered its hello the failure is the boot's (or the connection's), and the tail of the
    /// guest console is the best clue. Once it answered, the failure is what the guest said (its
    /// create failed: a bad spec, a missing executable, a hook) and is reported as it said it, as over
    /// the host-agent transport; the console is added only if the VM stopped meanwhile.
    static func failureMessage(_ e: RuntimeError, booting: Bool, agentAnswered: Bool, vmStopped: Bool,
                               console: () -> String) -> String {
        guard booting else { return e.message }
        if !agentAnswered && (e.kind == .system || e.kind == .internalError) {
            return "the guest agent did not become ready: \(e.message); guest console: \(console())"
        }
        return vmStopped ? "\(e.message); guest console: \(console())" : e.message
    }

    func timing(_ key: String, _ seconds: Double) { record(key, Int(seconds * 1000)) }

    /// One `key=value` line in the state dir's `timing` file (benchmarks/microvm.sh reads it).
    func record(_ key: String, _ value: Int) {
        _ = try? Files.write(config.stateDir + "/timing", "\(key)=\(value)\n", flags: O_WRONLY | O_CREAT | O_APPEND)
    }
}
