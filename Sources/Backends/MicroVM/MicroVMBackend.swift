import BrigAgentProtocol
import BrigCore
import BrigJSON
import BrigLinux
import BrigOCI
import Glibc

/// The microvm backend: each container gets its own VM (brig is the VMM) whose PID 1 is
/// brig-agent; the container runs inside it with the namespaces backend's code. Host side,
/// one monitor process per container is the VMM and relays the container's stdio; its pid is
/// the container's pid, and it exits with the container's exit status.
public struct MicroVMBackend: Backend {
    public var name: String { "microvm" }
    /// This binary (re-exec'd as `vm-monitor`).
    public var executable: String
    public var mode: MicroVMMode
    public var agentExecutable: String
    public var defaults: MicroVMDefaults
    /// nil without --debug: a debug line's interpolation is then never evaluated (`debug?(…)`).
    public var debug: ((String) -> Void)?
    /// Warnings (the namespaces backend's, e.g. a populated cgroup joined).
    public var warn: (String) -> Void

    public init(executable: String, mode: MicroVMMode, agentExecutable: String, defaults: MicroVMDefaults,
                debug: ((String) -> Void)? = nil, warn: @escaping (String) -> Void = { _ in }) {
        self.executable = executable; self.mode = mode; self.agentExecutable = agentExecutable
        self.defaults = defaults; self.debug = debug; self.warn = warn
    }

    /// From the environment: BRIG_MICROVM_TRANSPORT=host-agent selects the test transport;
    /// BRIG_AGENT names brig-agent (default: next to this executable).
    public static func fromEnvironment(debug: ((String) -> Void)?, warn: @escaping (String) -> Void = { _ in }) -> MicroVMBackend {
        let exe = selfExecutable()
        let dir = exe.split(separator: "/").dropLast().joined(separator: "/")
        let mode = MicroVMMode(rawValue: Env.get("BRIG_MICROVM_TRANSPORT") ?? "kvm") ?? .kvm
        let env = Dictionary(Env.all().compactMap { e -> (String, String)? in
            guard let eq = e.firstIndex(of: "=") else { return nil }
            return (String(e[..<eq]), String(e[e.index(after: eq)...]))
        }, uniquingKeysWith: { a, _ in a })
        return MicroVMBackend(executable: exe, mode: mode, agentExecutable: Env.get("BRIG_AGENT") ?? "/\(dir)/brig-agent",
                              defaults: .fromEnvironment(env, hostCPUs: Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))),
                                                         nested: MicroVMDefaults.hostIsVirtual(cpuinfo: (try? Files.readString("/proc/cpuinfo")) ?? "")),
                              debug: debug, warn: warn)
    }

    static func selfExecutable() -> String {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        return n > 0 ? String(cString: buf) : "/proc/self/exe"
    }

    // MARK: record state

    struct Info {
        var mode: MicroVMMode
        var endpoint: AgentEndpoint
        var stateDir: String
        init(mode: MicroVMMode, stateDir: String) {
            self.mode = mode; self.stateDir = stateDir
            endpoint = mode == .kvm ? .vsock(uds: MonitorConfig.vsockPath(stateDir), port: AgentEndpoint.agentPort)
                                    : .unix(path: MonitorConfig.agentSocketPath(stateDir))
        }
        init(_ record: ContainerRecord) {
            guard case .microvm(let h) = record.handle else { self.init(mode: .kvm, stateDir: ""); return }
            self.init(mode: MicroVMMode(rawValue: h.mode) ?? .kvm, stateDir: h.stateDir)
        }
        var pendingStart: String { stateDir + "/start.pending" }
        /// Seconds a request to a running agent (start, ps, stats) may take to connect and be
        /// greeted: instant on a healthy host, seconds when the guest is nested or emulated
        /// and busy (an OOM in it); only a wedged agent makes a caller wait this long.
        static let requestTimeout: Double = 15
    }

    // MARK: Backend

    public func create(_ o: CreateOptions, store: StateStore, reserve: Reserve) throws(RuntimeError) -> ContainerRecord {
        try reserve(nil)  // its record names the state directory the plan makes: saved below
        let spec = o.spec
        try Self.checkSupported(spec, options: o)
        var plan = try MicroVMPlan.make(spec: spec, bundle: o.bundle, defaults: defaults)
        plan.network = try GuestNetwork.plan(spec, kvm: mode == .kvm)
        var guestSpec = GuestNetwork.guestSpec(spec)
        // Binds of host paths reach the guest over virtio-fs (the host agent sees the host's paths).
        if mode == .kvm { (plan.shares, guestSpec) = try GuestShares.plan(guestSpec, bundle: o.bundle) }
        let info = Info(mode: mode, stateDir: store.directory(o.id))
        var rootfs = ""
        var disk: String? = nil
        switch plan.rootDisk {
        case let .directory(path):
            rootfs = path
            guard Files.isDirectory(path) else { throw RuntimeError(.config, "root.path: rootfs \(path) does not exist or is not a directory") }
        case let .image(path):
            guard Files.exists(path) else { throw RuntimeError(.config, "vm.image.path: \(path) does not exist") }
            disk = path
        }
        if mode == .kvm {
            guard Files.exists("/dev/kvm") else { throw RuntimeError(.unsupported, "the microvm backend needs /dev/kvm, which this host does not have") }
            guard access(plan.kernel, R_OK) == 0 else {
                throw RuntimeError(.config, "vm.kernel.path: guest kernel \(plan.kernel) is missing (install one with scripts/install-guest.sh or set BRIG_VM_KERNEL)")
            }
            guard access(plan.initrd, R_OK) == 0 else {
                throw RuntimeError(.config, "vm.kernel.initrd: agent initramfs \(plan.initrd) is missing (scripts/install-guest.sh builds it, or set BRIG_VM_INITRD)")
            }
        } else {
            guard access(agentExecutable, X_OK) == 0 else { throw RuntimeError(.config, "brig-agent not found at \(agentExecutable) (set BRIG_AGENT)") }
            guard disk == nil else { throw RuntimeError(.unsupported, "vm.image: the host-agent transport needs a rootfs directory") }
        }
        // The host cgroup the monitor (the VMM) runs in: recorded below before it is made.
        var host = mode == .kvm ? try HostCgroup.plan(o) : nil
        // What the container will hold (the disk image copy, the monitor and its VM, sockets, the
        // tap) is recorded before it is acquired, so `delete --force` removes what a brig killed at
        // any later point left (docs/reliability.md): the state directory first, the monitor's pid
        // as soon as it exists.
        let created = Timestamp.now()
        var pending = ContainerRecord(id: o.id, handle: .microvm(MicroVMHandle(mode: mode.rawValue, stateDir: info.stateDir, guestPid: 0,
                                                                                cgroup: host?.prospective)),
                                      bundle: o.bundle, rootfs: rootfs, pid: 0, pidStartTime: 0, created: created, owner: "",
                                      annotations: spec.annotations, hooks: spec.hooks)
        pending.incomplete = true
        try store.save(pending, durable: false)
        CrashPoint.reached("microvm.recorded")
        try host?.make(o, warn: warn, debug: debug)
        if host?.manager.state.paths.isEmpty == true { host = nil }  // rootless, no cgroup of its own
        if mode == .kvm, disk == nil {
            let image = info.stateDir + "/rootfs.ext4"
            // The guest cannot create mount points in a read-only image: brig does, as runc does.
            if spec.root?.readonly == true { try RootfsMountPoints.create(RootfsMountPoints.targets(spec, bundle: o.bundle), in: rootfs) }
            try RootfsImage(cacheDir: store.root + "/.images").materialize(rootfs: rootfs, to: image)
            disk = image
            CrashPoint.reached("microvm.image")
        }
        var config = MonitorConfig(id: o.id, stateDir: info.stateDir, mode: mode, role: .container(spec: guestSpec, rootfs: rootfs),
                                   endpoint: info.endpoint, terminal: spec.process?.terminal ?? false,
                                   consoleSocket: o.consoleSocket.map(Files.absolute), consoleOnFD4: o.consoleFD != nil,
                                   plan: plan, diskImage: disk, agentExecutable: agentExecutable)
        if !config.terminal { config.consoleSocket = nil; config.consoleOnFD4 = false }
        config.bundle = o.bundle
        do { try Files.write(info.pendingStart, "", flags: O_WRONLY | O_CREAT | O_TRUNC) } catch { throw RuntimeError.wrap(error) }
        try plan.network?.record(stateDir: info.stateDir) // before the monitor creates the tap and filters
        func record(monitor pid: pid_t, guestPid: Int32) throws(RuntimeError) -> ContainerRecord {
            guard let stat = ProcStat.read(pid: pid), stat.state != "Z" else {
                throw RuntimeError(.system, "the VM monitor exited during create")
            }
            let handle = MicroVMHandle(mode: mode.rawValue, stateDir: info.stateDir, guestPid: guestPid, cgroup: host?.record)
            return ContainerRecord(id: o.id, handle: .microvm(handle), bundle: o.bundle, rootfs: rootfs, pid: pid,
                                   pidStartTime: stat.startTime, created: created, owner: "", annotations: spec.annotations,
                                   hooks: spec.hooks)
        }
        // The monitor's pid, recorded as soon as it exists (a brig killed before this save leaves
        // a monitor that sees its creator gone and exits by itself).
        let spawned = { (pid: pid_t) throws(RuntimeError) in
            CrashPoint.reached("microvm.spawned")
            pending.handle = .microvm(MicroVMHandle(mode: mode.rawValue, stateDir: info.stateDir, guestPid: 0, cgroup: host?.record))
            pending.pid = pid
            pending.pidStartTime = ProcStat.read(pid: pid)?.startTime ?? 0
            try store.save(pending, durable: false)
            CrashPoint.reached("microvm.monitor")
        }
        // prestart, createRuntime and createContainer run here, in the host's namespaces, when
        // the agent reports the container's namespaces created (before its pivot_root).
        // createContainer's path resolves on the host (runtime.md), so it runs on the host, as
        // Kata runs it, in the container's root directory as runc and the namespaces backend do.
        let (pid, guestPid) = try spawnMonitor(config, name: "monitor.json", consoleFD: o.consoleFD, cgroup: host, spawned: spawned) { (pid, guestPid) throws(RuntimeError) in
            let state = try record(monitor: pid, guestPid: guestPid).state(.creating)
            try HookRunner.runCreateRuntime(spec.hooks, state: state)
            try HookRunner.run(spec.hooks?.createContainer ?? [], kind: "createContainer", state: state, cwd: rootfs)
        }
        debug?("microvm \(o.id): monitor pid \(pid), guest pid \(guestPid)")
        host?.releaseKernelThreads()  // the VM exists: its cgroup can be frozen by anyone now
        do throws(RuntimeError) {
            let r = try record(monitor: pid, guestPid: guestPid)
            if let pidFile = o.pidFile {
                do { try Files.writeAtomically(Files.absolute(pidFile), Array("\(pid)".utf8)) } catch { throw RuntimeError.wrap(error) }
            }
            return r
        } catch {
            stopMonitor(id: o.id, pid: pid, info: info)
            throw error
        }
    }

    /// What the VM boundary cannot offer, refused up front with the field named.
    static func checkSupported(_ spec: Spec, options o: CreateOptions) throws(RuntimeError) {
        if o.preserveFDs > 0 { throw RuntimeError(.unsupported, "--preserve-fds: host file descriptors cannot be passed into a microvm") }
        for (i, ns) in (spec.linux?.namespaces ?? []).enumerated() where ns.path != nil && ns.type != NamespaceKind.network.rawValue {
            throw RuntimeError(.unsupported, "linux.namespaces[\(i)].path: a microvm container cannot join host namespaces")
        }
        if let devices = spec.linux?.netDevices, !devices.isEmpty {
            throw RuntimeError(.unsupported, "linux.netDevices: moving host network devices into a microvm is not supported")
        }
    }

    /// Spawns `brig vm-monitor`, waits for its `ok <guest pid>` (or its error), returns its pid.
    /// Fd 3 is a stream socket: before that report, the monitor may ask `hooks <guest pid>`, and
    /// `runtimeHooks` runs then (its failure goes back as `error <message>` and fails the create).
    /// `spawned` runs as soon as the monitor exists (the create records its pid); its failure
    /// kills the monitor. A monitor whose creator dies before its report exits by itself.
    /// With `cgroup` the monitor is born in it (clone3) or moved into it before it does anything
    /// (it waits for `placed` on fd 3), and `spawned` runs once it is there.
    func spawnMonitor(_ config: MonitorConfig, name: String, consoleFD: Int32?, cgroup: HostCgroup? = nil,
                      spawned: ((pid_t) throws(RuntimeError) -> Void)? = nil,
                      runtimeHooks: ((pid_t, Int32) throws(RuntimeError) -> Void)? = nil) throws(RuntimeError) -> (pid_t, Int32) {
        var config = config
        if cgroup != nil { config.awaitPlacement = true }
        let path = config.stateDir + "/" + name
        do {
            try Files.writeAtomically(path, try JSONEncoding.encode(config), mode: 0o600)
        } catch { throw RuntimeError.wrap(error, "writing \(path)") }
        let (mine, theirs): (Int32, Int32)
        do { (mine, theirs) = try UnixSocket.pair(type: Int32(SOCK_STREAM.rawValue)) } catch { throw RuntimeError.wrap(error) }
        defer { close(mine) }
        var o = Spawn.Options(path: executable, args: [executable, "vm-monitor", path], env: Env.all())
        o.fds = [(theirs, MonitorConfig.syncFD)]
        if let c = consoleFD { o.fds.append((c, MonitorConfig.consoleFD)) }
        var pid: pid_t = 0
        var born = false
        do {
            if let dir = cgroup?.spawnDirectory {
                let fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                if fd >= 0 { defer { close(fd) }; pid = try Spawn.spawn(o, intoCgroup: fd) ?? 0 }
                born = pid > 0
                debug?(born ? "VM monitor born in its cgroup \(dir) (clone3)" : "clone3 into \(dir) not possible here: spawning, then moving the monitor")
            }
            if pid == 0 { pid = try Spawn.spawn(o) }
        } catch { close(theirs); throw RuntimeError.wrap(error, "starting the VM monitor") }
        close(theirs)
        do throws(RuntimeError) {
            if let cgroup, !born { try cgroup.place(pid) }
            try spawned?(pid)
            if cgroup != nil {
                do { try Files.writeAll(fd: mine, Array("placed\n".utf8)) } catch { throw RuntimeError.wrap(error, "starting the VM monitor") }
            }
        } catch {
            Glibc.kill(pid, SIGKILL)
            _ = try? Spawn.wait(pid)
            throw error
        }
        var hookError: RuntimeError?
        var reply = Files.readLine(fd: mine, max: 1 << 16)
        while reply.end == .newline, reply.text.hasPrefix("hooks "), let guestPid = Int32(reply.text.dropFirst(6)) {
            var answer = "ok"
            if let runtimeHooks {
                do { try runtimeHooks(pid, guestPid) } catch {
                    hookError = error
                    answer = "error " + Monitor.oneLine(error.message)
                }
            } else { answer = "error no runtime hooks to run" }
            try? Files.writeAll(fd: mine, Array((answer + "\n").utf8))
            reply = Files.readLine(fd: mine, max: 1 << 16)
        }
        if reply.end == .newline, reply.text.hasPrefix("ok "), let guestPid = Int32(reply.text.dropFirst(3)) { return (pid, guestPid) }
        Glibc.kill(pid, SIGKILL)
        _ = try? Spawn.wait(pid)
        GuestNetwork.cleanUp(stateDir: config.stateDir)
        if let hookError { throw hookError }
        if reply.end == .newline, reply.text.hasPrefix("error ") { throw Self.guestError(String(reply.text.dropFirst(6))) }
        // Killed, or crashed, before it could say why: what the guest printed is the clue.
        var message = "the VM monitor exited without reporting"
        if let console = try? Files.read(config.stateDir + "/console.log"), !console.isEmpty {
            message += "; guest console: " + String(decoding: console.suffix(1000), as: UTF8.self)
        }
        throw RuntimeError(.system, message)
    }

    /// Guest errors keep their kind: config errors name the field, as on the host.
    static func guestError(_ message: String) -> RuntimeError {
        if let space = message.firstIndex(of: " "), message.hasPrefix("[") , let close = message.firstIndex(of: "]"), close < space {
            let kind = String(message[message.index(after: message.startIndex)..<close])
            let text = String(message[message.index(after: space)...])
            return RuntimeError(AgentSession.kind(kind), text)
        }
        return RuntimeError(.system, message)
    }

    public func start(_ record: ContainerRecord, store: StateStore) throws(RuntimeError) {
        let info = Info(record)
        let session = try info.endpoint.session(timeout: Info.requestTimeout)
        try Self.mayEndContainer(record) { () throws(AgentError) in try session.client.start(id: record.id) }
        unlink(info.pendingStart)
    }

    public func exec(_ o: ExecOptions, record: ContainerRecord, spec: Spec, store: StateStore) throws(RuntimeError) -> Int32 {
        try Self.checkExec(o, record: record)
        let info = Info(record)
        var n = UInt32.random(in: 0...UInt32.max)
        let execID = "exec-" + String(withUnsafeBytes(of: &n) { $0.map { String(format2: $0) }.joined() })
        var config = MonitorConfig(id: record.id, stateDir: info.stateDir, mode: info.mode,
                                   role: .exec(process: o.process, execID: execID), endpoint: info.endpoint,
                                   terminal: o.process.terminal ?? false, consoleSocket: o.consoleSocket.map(Files.absolute),
                                   consoleOnFD4: o.consoleFD != nil, plan: nil, diskImage: nil, agentExecutable: nil)
        if !o.subCgroups.isEmpty { config.subCgroups = o.subCgroups }
        let (pid, _) = try spawnMonitor(config, name: execID + ".json", consoleFD: o.consoleFD)
        unlink(info.stateDir + "/" + execID + ".json")
        if let pidFile = o.pidFile {
            do { try Files.writeAtomically(Files.absolute(pidFile), Array("\(pid)".utf8)) } catch { throw RuntimeError.wrap(error) }
        }
        return pid
    }

    public func featureAnnotations() -> [String: String] {
        ["run.oci.brig.microvm.supported": "create,start,state,kill,delete,exec,ps,pause,resume,run,events,console-socket,pid-file,hooks,memory->guest RAM,cpu->vCPUs,bind mounts of directories and files->virtio-fs",
         "run.oci.brig.microvm.unsupported": "bind mounts of device nodes/sockets/FIFOs,joining host namespaces by path (network: with the kvm transport),linux.netDevices,--preserve-fds,update"]
    }

    /// Guest pids: the host's ps(1) cannot describe them.
    public var reportsHostPids: Bool { false }

    /// Each OOM-count ask is a new agent connection (a vsock round trip into the guest).
    public var eventsPollSeconds: Double { 1 }

    /// Why `update` is refused.
    public var unsupportedReason: String? { "its cgroups live inside the guest" }

    /// The container's cgroup stats and OOM-kill count come from the agent (its cgroups are the guest's).
    /// The container's monitor (its VMM) still runs: the recorded pid with the recorded start time.
    static func monitorAlive(_ record: ContainerRecord) -> Bool {
        guard let s = ProcStat.read(pid: record.pid) else { return false }
        return s.startTime == record.pidStartTime && s.state != "Z"
    }

    /// A stopped container's VM is gone: refused at once instead of waiting for its socket, also
    /// when it goes while the connection is retried (`events` polls across a `delete`).
    public func agentStats(_ record: ContainerRecord) throws(RuntimeError) -> AgentStats {
        guard Self.monitorAlive(record) else { throw RuntimeError(.invalidState, "container \(record.id) is not running") }
        let gone = { Self.monitorAlive(record) ? nil : "container \(record.id) stopped" }
        return try Info(record).endpoint.session(timeout: Info.requestTimeout, gone: gone).stats(id: record.id)
    }

    public func stats(_ record: ContainerRecord) throws(RuntimeError) -> CgroupStats { try agentStats(record).cgroup }

    public func oomKillCount(_ record: ContainerRecord) throws(RuntimeError) -> UInt64 { try agentStats(record).oomKills ?? 0 }

    /// Kills the monitor (the VM with it) and, for the host agent, the agent and its containers.
    func stopMonitor(id: String, pid: pid_t, startTime: UInt64? = nil, info: Info) {
        if info.mode == .hostAgent, let session = try? info.endpoint.session(timeout: 0) {
            try? session.delete(id: id, force: true)
        }
        if pid > 0, let s = ProcStat.read(pid: pid), startTime == nil || s.startTime == startTime {
            Glibc.kill(pid, SIGKILL)
            Glibc.kill(pid, SIGCONT)
            var status: Int32 = 0
            _ = waitpid(pid, &status, 0)
        }
        if let text = try? Files.readString(info.stateDir + "/agent.pid"), let agent = Int32(text) {
            Glibc.kill(agent, SIGKILL)
        }
        for f in ["vsock.sock", "agent.sock", "rootfs.ext4"] { unlink(info.stateDir + "/" + f) }
        GuestNetwork.cleanUp(stateDir: info.stateDir) // the tap went with the VMM; the qdiscs stay until now
    }

}

extension String {
    init(format2 byte: UInt8) {
        let s = String(byte, radix: 16)
        self = s.count == 1 ? "0" + s : s
    }
}
