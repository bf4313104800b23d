import BrigCgroups
import BrigCore
import BrigLinux
import BrigOCI
import BrigSeccomp
import CBrigShim
import FoundationEssentials
import Glibc

/// The runc-like backend: Linux namespaces, cgroups, pivot_root. The container process is a
/// re-exec'd `brig init`; this side only spawns it, answers its requests, and records it.
public struct NamespacesBackend: Backend {
    public var name: String { "namespaces" }
    /// The executable to re-exec as `init`: a read-only copy of this binary (see
    /// SealedExecutable), or /proc/self/exe where that copy can't be made.
    public var executable: String?
    public var debug: (String) -> Void

    public init(executable: String? = nil, debug: @escaping (String) -> Void = { _ in }) {
        self.executable = executable; self.debug = debug
    }

    public func create(_ o: CreateOptions, store: StateStore) throws(RuntimeError) -> ContainerRecord {
        do { return try createThrowing(o, store: store) } catch { throw RuntimeError.wrap(error) }
    }

    func createThrowing(_ o: CreateOptions, store: StateStore) throws -> ContainerRecord {
        let spec = o.spec
        let rootfs = LaunchPlan.clean(spec.root!.path.hasPrefix("/") ? spec.root!.path : o.bundle + "/" + spec.root!.path)
        guard Files.isDirectory(rootfs) else { throw RuntimeError(.config, "root.path: rootfs \(rootfs) does not exist or is not a directory") }

        // Cgroups first, so the init process is placed before it creates its cgroup namespace.
        let hierarchies = CgroupPlacement.hierarchies(mountinfo: try Files.readString("/proc/self/mountinfo"))
        let cgroups: any CgroupManager
        do {
            cgroups = try makeCgroupManager(cgroupsPath: spec.linux?.cgroupsPath, containerID: o.id, systemd: o.systemdCgroup)
        } catch CgroupError.systemdNotRunning {
            throw RuntimeError(.unsupported, "linux.cgroupsPath \"\(spec.linux?.cgroupsPath ?? "")\": --systemd-cgroup requested but systemd is not running")
        }
        // Each mounted hierarchy with the container's directory in it (for `cgroup` mounts).
        let dirs: [(CgroupPlacement.Hierarchy, String)] = hierarchies.compactMap { h in
            cgroups.state.paths[h.version == 2 ? "" : h.options].map { (h, $0) }
        }
        var extraEnv: [String] = []
        var preserve = o.preserveFDs
        if let listen = ProcessInfoLite.env("LISTEN_FDS"), let n = Int(listen), n > 0 {
            extraEnv.append("LISTEN_FDS=\(n)"); extraEnv.append("LISTEN_PID=1")
            preserve = max(preserve, n)
        }
        var plan = try LaunchPlan.make(
            spec: spec, id: o.id, bundle: o.bundle, noPivot: o.noPivot, preserveFDs: preserve,
            cgroups: dirs.map { LaunchPlan.CgroupHierarchy(mountpoint: $0.0.mountpoint, options: $0.0.options,
                                                            version: $0.0.version, containerDir: $0.1) },
            extraEnv: extraEnv)

        plan.newKeyring = !o.noNewKeyring
        try applyHostChecks(spec: spec, plan: &plan)
        var cleanup = Cleanup(cgroups: nil)
        defer { cleanup.run() }
        do {
            try cgroups.join()
            cleanup.cgroups = cgroups
            try cgroups.apply(spec.linux?.resources ?? Resources())
        } catch let e as CgroupError { throw RuntimeError(.config, "\(e)") }

        let startSock = try InitFDs.lift(try UnixSocket.listen(store.startSocket(o.id)), preserve: preserve)
        cleanup.fds.append(startSock)
        let fds = try InitFDs.open(preserve: preserve, consoleFD: o.consoleFD, consoleSocket: o.consoleSocket, stdio: o.stdio, cleanup: &cleanup)
        let (parentSock, consoleFD) = (fds.parent, fds.console)
        let initPid = try fds.spawn(executable: initExecutable(store), startFD: startSock, cleanup: &cleanup)

        try cgroups.addProcess(initPid)
        let channel = SyncChannel(fd: parentSock)
        try channel.send(.plan(plan))

        let created_ = Timestamp.now()
        var containerPid: Int32 = 0
        func state(_ status: ContainerStatus) -> ContainerState {
            ContainerState(id: o.id, status: status, pid: containerPid, bundle: o.bundle, rootfs: rootfs,
                           created: created_, owner: "", annotations: spec.annotations)
        }
        loop: while true {
            guard let (message, passedFD) = try channel.receiveWithFD() else {
                let status = (try? Spawn.wait(initPid)).map { "\($0)" } ?? "unknown"
                cleanup.pids.removeAll { $0 == initPid }
                throw RuntimeError(.system, "container init exited before it was ready (\(status))")
            }
            switch message {
            case .mapUser:
                try writeMappings(pid: initPid, plan: plan)
                try channel.send(.mapped)
            case .childPid(let pid):
                containerPid = pid
                cleanup.pids.append(pid)
                _ = try? Spawn.wait(initPid)
                cleanup.pids.removeAll { $0 == initPid }
                try moveNetDevices(spec.linux?.netDevices ?? [:], into: pid)
            case .runtimeHooks:
                do throws(RuntimeError) {
                    try HookRunner.run(spec.hooks?.prestart ?? [], kind: "prestart", state: state(.creating))
                    try HookRunner.run(spec.hooks?.createRuntime ?? [], kind: "createRuntime", state: state(.creating))
                    do { try o.runtimeHooks?(state(.creating)) } catch { throw RuntimeError.wrap(error) }
                } catch {
                    try? channel.send(.error(error.description))
                    throw error
                }
                let json = String(decoding: try JSONEncoder().encode(state(.creating)), as: UTF8.self)
                try channel.send(.hooksDone(json))
            case .seccompFD:
                try forwardNotifyFD(passedFD, plan: plan, state: state(.creating))
            case .ready:
                break loop
            case .error(let message):
                throw RuntimeError(.system, message)
            case .plan, .mapped, .hooksDone:
                throw RuntimeError(.internalError, "unexpected message from container init")
            }
        }
        guard containerPid > 0, let stat = ProcStat.read(pid: containerPid) else {
            throw RuntimeError(.system, "container process vanished during create")
        }
        let record = ContainerRecord(
            id: o.id, backend: name, bundle: o.bundle, rootfs: rootfs, pid: containerPid,
            pidStartTime: stat.startTime, created: created_, owner: "", annotations: spec.annotations,
            hooks: spec.hooks, cgroup: cgroups.state, systemdCgroup: o.systemdCgroup)
        if let pidFile = o.pidFile {
            try Files.writeAtomically(Files.absolute(pidFile), Array("\(containerPid)".utf8))
        }
        cleanup.disarm()
        for fd in [parentSock, startSock, consoleFD] where fd >= 0 { close(fd) }
        return record
    }


    /// What depends on the host rather than the config: LSMs (applied only where enabled, as
    /// runc does, with a debug line otherwise) and Intel RDT (a clear error where absent).
    func applyHostChecks(spec: Spec, plan: inout LaunchPlan) throws {
        if let profile = spec.process?.apparmorProfile, !profile.isEmpty {
            if ((try? Files.readString("/sys/module/apparmor/parameters/enabled")) ?? "").hasPrefix("Y") {
                plan.process.apparmorProfile = profile
            } else {
                debug("process.apparmorProfile \(profile) ignored: AppArmor is not enabled on this host")
            }
        }
        if let label = spec.process?.selinuxLabel, !label.isEmpty {
            if Files.exists("/sys/fs/selinux/enforce") { plan.process.selinuxLabel = label }
            else { debug("process.selinuxLabel ignored: SELinux is not enabled on this host") }
        }
        if spec.linux?.intelRdt != nil && !Files.exists("/sys/fs/resctrl/info") {
            throw RuntimeError(.unsupported, "linux.intelRdt: Intel RDT (resctrl) is not available on this host")
        }
    }

    /// linux.netDevices: moves each host interface into the container's new network namespace,
    /// renamed as asked.
    func moveNetDevices(_ devices: [String: NetDevice], into pid: Int32) throws {
        guard !devices.isEmpty else { return }
        let ns = try Files.open("/proc/\(pid)/ns/net", O_RDONLY)
        defer { close(ns) }
        for (name, dev) in devices.sorted(by: { $0.key < $1.key }) {
            let r = brig_link_move(name, ns, dev.name ?? name)
            if r != 0 { throw RuntimeError(.config, "linux.netDevices.\(name): \(SystemError(errno: -r, "move interface into the container"))") }
        }
    }

    func writeMappings(pid: Int32, plan: LaunchPlan) throws {
        func text(_ m: [IDMapping]) -> String { m.map { "\($0.containerID) \($0.hostID) \($0.size)\n" }.joined() }
        do { try Files.write("/proc/\(pid)/uid_map", text(plan.uidMappings)) } catch {
            throw RuntimeError(.config, "linux.uidMappings: \(error)")
        }
        do { try Files.write("/proc/\(pid)/gid_map", text(plan.gidMappings)) } catch {
            throw RuntimeError(.config, "linux.gidMappings: \(error)")
        }
    }

    func initExecutable(_ store: StateStore) -> String {
        if let executable { return executable }
        if let sealed = SealedExecutable.path() { return sealed }
        debug("no read-only copy of brig could be made under \(SealedExecutable.directory); using /proc/self/exe")
        return "/proc/self/exe"
    }

    public func exec(_ o: ExecOptions, record: ContainerRecord, spec: Spec, store: StateStore) throws(RuntimeError) -> Int32 {
        do {
            let plan = try LaunchPlan.forExec(spec: spec, process: o.process, id: record.id, bundle: record.bundle,
                                              containerPid: record.pid, preserveFDs: o.preserveFDs)
            var cleanup = Cleanup(cgroups: nil)
            defer { cleanup.run() }
            let fds = try InitFDs.open(preserve: o.preserveFDs, consoleFD: o.consoleFD, consoleSocket: o.consoleSocket, stdio: o.stdio, cleanup: &cleanup)
            let (parentSock, consoleFD) = (fds.parent, fds.console)
            let initPid = try fds.spawn(executable: initExecutable(store), startFD: nil, cleanup: &cleanup)
            // The exec'd process belongs to the container's cgroup (leaf directories).
            try record.cgroupManager.addProcess(initPid)
            let channel = SyncChannel(fd: parentSock)
            try channel.send(.plan(plan))
            var pid: Int32 = 0
            while let (message, passedFD) = try channel.receiveWithFD() {
                switch message {
                case .seccompFD:
                    try forwardNotifyFD(passedFD, plan: plan, state: record.state(.running))
                case .childPid(let p):
                    pid = p
                    cleanup.pids.append(p)
                    _ = try? Spawn.wait(initPid)
                    cleanup.pids.removeAll { $0 == initPid }
                case .error(let text):
                    throw RuntimeError(.system, text)
                default:
                    throw RuntimeError(.internalError, "unexpected message from exec init")
                }
            }
            guard pid > 0 else { throw RuntimeError(.system, "exec init exited before starting the process") }
            if let pidFile = o.pidFile { try Files.writeAtomically(Files.absolute(pidFile), Array("\(pid)".utf8)) }
            cleanup.disarm()
            for fd in [parentSock, consoleFD] where fd >= 0 { close(fd) }
            return pid
        } catch { throw RuntimeError.wrap(error, "exec in \(record.id)") }
    }

    /// Hands a seccomp notify fd to `linux.seccomp.listenerPath` with the container state (runc's
    /// ContainerProcessState), then closes our copy.
    func forwardNotifyFD(_ fd: Int32, plan: LaunchPlan, state: ContainerState) throws {
        defer { if fd >= 0 { close(fd) } }
        guard fd >= 0, let path = plan.seccomp?.listenerPath else {
            throw RuntimeError(.internalError, "seccomp notify fd without a listener")
        }
        let payload = SeccompListener.processState(state: state, metadata: plan.seccomp?.listenerMetadata)
        do { try SeccompListener.send(notifyFD: fd, listenerPath: path, state: payload) } catch {
            throw RuntimeError(.config, "linux.seccomp.listenerPath: \(error)")
        }
    }

    public func start(_ record: ContainerRecord, store: StateStore) throws(RuntimeError) {
        do {
            let conn = try UnixSocket.connect(store.startSocket(record.id))
            defer { close(conn) }
            var state = record.state(.created)
            state.status = .created
            try UnixSocket.send(conn, Array(try JSONEncoder().encode(state)))
            shutdown(conn, Int32(SHUT_WR))
            var reply: [UInt8] = []
            while true {
                var buf = [UInt8](repeating: 0, count: 65536)
                var passed: Int32 = -1
                let n = try sys("recv") { buf.withUnsafeMutableBytes { brig_recv_fd(conn, &passed, $0.baseAddress, $0.count) } }
                if passed >= 0 {
                    let spec = try? ConfigLoader.decode(Data(try Files.read(record.bundle + "/config.json")))
                    let listener = spec?.linux?.seccomp?.listenerPath
                    defer { close(passed) }
                    if let listener {
                        let payload = SeccompListener.processState(state: record.state(.running), metadata: spec?.linux?.seccomp?.listenerMetadata)
                        do { try SeccompListener.send(notifyFD: passed, listenerPath: listener, state: payload) } catch {
                            throw RuntimeError(.config, "linux.seccomp.listenerPath: \(error)")
                        }
                    }
                }
                if n == 0 { break }
                reply += buf[0..<n].filter { $0 != 1 }
            }
            unlink(store.startSocket(record.id))
            if !reply.isEmpty { throw RuntimeError(.system, String(decoding: reply, as: UTF8.self)) }
        } catch { throw RuntimeError.wrap(error, "start \(record.id)") }
    }

    public func facts(_ record: ContainerRecord, store: StateStore) -> LiveFacts {
        let alive = ProcessLiveness.isAlive(pid: record.pid, startTime: record.pidStartTime)
        let pending = Files.exists(store.startSocket(record.id))
        let frozen = alive && ((try? record.cgroupManager.isFrozen()) ?? false)
        return LiveFacts(alive: alive, startPending: pending, frozen: frozen)
    }

    public func kill(_ record: ContainerRecord, signal: Int32, all: Bool) throws(RuntimeError) {
        // The init pid only while it is still ours (a stopped container's pid may have been reused).
        var pids = ProcessLiveness.isAlive(pid: record.pid, startTime: record.pidStartTime) ? [record.pid] : []
        if all { pids = Array(Set(pids + ((try? record.cgroupManager.pids()) ?? []))) }
        for pid in pids {
            if Glibc.kill(pid, signal) != 0 && errno != ESRCH {
                throw RuntimeError.wrap(SystemError.last("kill \(pid) with signal \(signal)"))
            }
        }
    }

    public func pause(_ record: ContainerRecord) throws(RuntimeError) {
        do { try record.cgroupManager.freeze() } catch { throw RuntimeError.wrap(error, "pause \(record.id)") }
    }

    public func resume(_ record: ContainerRecord) throws(RuntimeError) {
        do { try record.cgroupManager.thaw() } catch { throw RuntimeError.wrap(error, "resume \(record.id)") }
    }

    public func pids(_ record: ContainerRecord) throws(RuntimeError) -> [Int32] {
        do { return try record.cgroupManager.pids() } catch { throw RuntimeError.wrap(error, "ps \(record.id)") }
    }

    public func destroy(_ record: ContainerRecord, store: StateStore) throws(RuntimeError) {
        // Processes left in a cgroup brig created (orphans of a stopped container) die with it;
        // a cgroup that was joined (a pod's) is left alone.
        let cgroups = record.cgroupManager
        if !record.cgroup.joinedExisting {
            for _ in 0..<100 {
                let pids = (try? cgroups.pids()) ?? []
                if pids.isEmpty { break }
                for pid in pids { Glibc.kill(pid, SIGKILL) }
                var ts = timespec(tv_sec: 0, tv_nsec: 2_000_000); nanosleep(&ts, nil)
            }
        }
        do { try cgroups.destroy() } catch { throw RuntimeError.wrap(error, "remove cgroup of \(record.id)") }
        unlink(store.startSocket(record.id))
    }
}

/// The fds `brig init` gets: the sync socket, the start socket (create only) and the console
/// socket, placed in slots right after the preserved fds (3..3+N-1), which pass through as they are.
struct InitFDs {
    let preserve: Int
    let parent: Int32
    let child: Int32
    let console: Int32
    /// Lifted copies of the fds that become the init's 0, 1, 2 (empty: it inherits ours).
    var stdio: [Int32] = []

    /// Moves our own fd well above the preserved range, so placing slots can't clobber it.
    static func lift(_ fd: Int32, preserve: Int) throws -> Int32 {
        let n = try sys("dup fd") { fcntl(fd, F_DUPFD_CLOEXEC, Int32(3 + preserve + 16)) }
        close(fd)
        return n
    }

    static func open(preserve: Int, consoleFD: Int32?, consoleSocket: String?, stdio: [Int32]? = nil,
                     cleanup: inout Cleanup) throws -> InitFDs {
        var lifted: [Int32] = []
        if let stdio {
            guard stdio.count == 3 else { throw RuntimeError(.internalError, "stdio needs exactly three fds") }
            for fd in stdio {
                lifted.append(try lift(try sys("dup stdio fd \(fd)") { dup(fd) }, preserve: preserve))
                cleanup.fds.append(lifted.last!)
            }
        }
        var console: Int32 = -1
        if let fd = consoleFD { console = try lift(try sys("dup console") { dup(fd) }, preserve: preserve) }
        else if let path = consoleSocket {
            do { console = try lift(try UnixSocket.connect(path), preserve: preserve) } catch {
                throw RuntimeError(.system, "--console-socket \(path): \(error)")
            }
        }
        if console >= 0 { cleanup.fds.append(console) }
        let (p, c) = try UnixSocket.pair()
        let parent = try lift(p, preserve: preserve), child = try lift(c, preserve: preserve)
        cleanup.fds += [parent, child]
        return InitFDs(preserve: preserve, parent: parent, child: child, console: console, stdio: lifted)
    }

    /// Spawns `brig init` with the fds in their slots; the child's end of the sync socket is
    /// closed here once the init holds it.
    func spawn(executable: String, startFD: Int32?, cleanup: inout Cleanup) throws -> pid_t {
        let pid = try Spawn.spawn(spawnOptions(executable: executable, startFD: startFD))
        cleanup.pids.append(pid)
        for fd in [child] + stdio { close(fd) }
        cleanup.fds.removeAll { $0 == child || stdio.contains($0) }
        return pid
    }

    func spawnOptions(executable: String, startFD: Int32?) -> Spawn.Options {
        let base = Int32(3 + preserve)
        var slots: [(Int32, Int32)] = [(child, base)]
        var next = base + 1
        var start: Int32 = -1, cons: Int32 = -1
        if let startFD { slots.append((startFD, next)); start = next; next += 1 }
        if console >= 0 { slots.append((console, next)); cons = next }
        var o = Spawn.Options(path: executable, args: ["brig", "init"], env: ["\(InitProcess.fdsVariable)=\(base),\(start),\(cons)"])
        o.fds = stdio.enumerated().map { ($0.element, Int32($0.offset)) } + slots + (3..<base).map { ($0, $0) }
        return o
    }
}

/// Undo list for a failed create: kill spawned processes, close fds, remove created cgroups.
struct Cleanup {
    var cgroups: (any CgroupManager)?
    var pids: [pid_t] = []
    var fds: [Int32] = []
    var armed = true

    mutating func disarm() { armed = false }

    func run() {
        guard armed else { return }
        for pid in pids { Glibc.kill(pid, SIGKILL) }
        for pid in pids { var s: Int32 = 0; _ = brig_waitpid(pid, &s, 0) }
        for fd in fds { close(fd) }
        // A killed container process that is not our child may take a moment to leave its cgroup.
        try? cgroups?.destroy()
    }
}

enum ProcessInfoLite {
    static func env(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }
}
