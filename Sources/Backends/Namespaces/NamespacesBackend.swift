import BrigCgroups
import BrigCore
import BrigJSON
import BrigLinux
import BrigOCI
import BrigSeccomp
import CBrigShim
import Glibc

/// The runc-like backend: Linux namespaces, cgroups, pivot_root. The container process is a
/// re-exec'd `brig init`; this side only spawns it, answers its requests, and records it.
public struct NamespacesBackend: Backend {
    public var name: String { "namespaces" }
    /// The executable to re-exec as `init`; nil: a private handle on this binary that can't be
    /// written through (see SealedExecutable), or /proc/self/exe where none can be made.
    public var executable: String?
    /// nil without --debug: a debug line's interpolation is then never evaluated (`debug?(…)`).
    public var debug: ((String) -> Void)?
    /// Warnings (runc logs them at level warning and carries on).
    public var warn: (String) -> Void

    public init(executable: String? = nil, debug: ((String) -> Void)? = nil,
                warn: @escaping (String) -> Void = { _ in }) {
        self.executable = executable; self.debug = debug; self.warn = warn
    }

    public func create(_ o: CreateOptions, store: StateStore, reserve: Reserve) throws(RuntimeError) -> ContainerRecord {
        do { return try createThrowing(o, store: store, reserve: reserve) } catch { throw RuntimeError.wrap(error) }
    }

    func createThrowing(_ o: CreateOptions, store: StateStore, reserve: Reserve) throws -> ContainerRecord {
        let spec = o.spec
        let rootfs = LaunchPlan.clean(spec.root!.path.hasPrefix("/") ? spec.root!.path : o.bundle + "/" + spec.root!.path)
        guard Files.isDirectory(rootfs) else { throw RuntimeError(.config, "root.path: rootfs \(rootfs) does not exist or is not a directory") }

        // Cgroups first, so the init process is placed before it creates its cgroup namespace.
        // mountinfo is read once, for both the manager and the hierarchies of `cgroup` mounts.
        let layout = try CgroupLayout.parse(mountinfo: try Files.readString("/proc/self/mountinfo"),
                                            procCgroup: try Files.readString("/proc/self/cgroup"))
        var cgroups = try Self.cgroupManager(o, layout: layout)
        // Rootless (runc): an unprivileged user cannot load the devices eBPF program, and device
        // access is bounded by the user's own permissions anyway.
        if o.rootless { cgroups.skipDevices = true }
        // runc's `org.systemd.property.*` annotations: more properties of the container's unit.
        if let unit = cgroups as? SystemdManager {
            do { unit.extraProperties = try SystemdAnnotations.properties(spec.annotations ?? [:]) } catch {
                throw RuntimeError(.config, "\(error)")
            }
        }
        // Each mounted hierarchy with the container's directory in it (for `cgroup` mounts).
        let dirs = layout.hierarchies.compactMap { h in cgroups.state.paths[h.key].map { (h, $0) } }
        var extraEnv: [String] = []
        var preserve = o.preserveFDs
        if let listen = ProcessInfoLite.env("LISTEN_FDS"), let n = Int(listen), n > 0 {
            extraEnv.append("LISTEN_FDS=\(n)"); extraEnv.append("LISTEN_PID=1")
            preserve = max(preserve, n)
        }
        var plan = try LaunchPlan.make(
            spec: spec, id: o.id, bundle: o.bundle, noPivot: o.noPivot, preserveFDs: preserve,
            cgroups: dirs.map { LaunchPlan.CgroupHierarchy(mountpoint: $0.0.mountPoint, options: $0.0.key,
                                                            version: $0.0.version, containerDir: $0.1) },
            extraEnv: extraEnv)

        plan.newKeyring = !o.noNewKeyring
        plan.hooksRoundTrip = !(spec.hooks?.prestart ?? []).isEmpty || !(spec.hooks?.createRuntime ?? []).isEmpty
            || o.runtimeHooks != nil || !plan.createContainerHooks.isEmpty
        try applyHostChecks(spec: spec, plan: &plan)

        // Everything the container will hold is recorded in state.json before it is acquired,
        // so `delete` can remove what a brig killed at any later point left (see CrashPoint):
        // the id's state directory is reserved with this record already in it.
        let created_ = Timestamp.now()
        let handle = NamespacesHandle(cgroup: CgroupRecord(NamespacesBackend.prospective(cgroups.state)), systemdCgroup: o.systemdCgroup)
        var record = ContainerRecord(
            id: o.id, handle: .namespaces(handle), bundle: o.bundle, rootfs: rootfs, pid: 0, pidStartTime: 0, created: created_,
            owner: "", annotations: spec.annotations, hooks: spec.hooks)
        record.incomplete = true
        try reserve(record)
        CrashPoint.reached("create.recorded")

        var cleanup = Cleanup(cgroups: nil)
        defer { cleanup.run() }
        let resources = spec.linux?.resources ?? Resources()
        do {
            cleanup.cgroups = cgroups
            if try cgroups.join() {
                // A pod's sandbox cgroup is joined on purpose; anything else is a leftover (runc 1.1 warns too).
                warn("container's cgroup is not empty: \((try? cgroups.pids().count) ?? 0) process(es) found")
            }
            try cgroups.apply(resources)
        } catch let e as CgroupError {
            // Rootless without a writable (delegated) cgroup: run without a cgroup of its own when
            // nothing needs one, as runc does; otherwise say what would be needed.
            guard o.rootless, e.isPermissionDenied else { throw RuntimeError(.config, "\(e)") }
            if resources.requestsLimits || !(spec.linux?.cgroupsPath ?? "").isEmpty {
                throw RuntimeError(.config, "\(e) (rootless: limits or a cgroupsPath need a cgroup subtree delegated to the user)")
            }
            debug?("rootless: running without a cgroup of its own: \(e)")
            try? cgroups.destroy()
            cgroups = NoCgroupManager(mode: cgroups.mode)
            cleanup.cgroups = nil
            // `cgroup` mounts show the cgroup the container really is in: the caller's.
            if let layout = try? CgroupLayout.current() {
                plan.cgroupHierarchies = plan.cgroupHierarchies.map { h in
                    var h = h
                    if h.version == 2, let m = layout.unifiedMount { h.containerDir = m + layout.unifiedOwnPath }
                    else if let v1 = layout.v1.first(where: { $0.mountPoint == h.mountpoint }) { h.containerDir = v1.mountPoint + v1.ownPath }
                    return h
                }
            }
        }
        CrashPoint.reached("create.cgroups")

        let startSock = try InitFDs.lift(try UnixSocket.listen(store.startSocket(o.id)), preserve: preserve)
        cleanup.fds.append(startSock)
        let launched = try InitFDs.launch(
            plan, step: "create", preserve: preserve, consoleFD: o.consoleFD, consoleSocket: o.consoleSocket, stdio: o.stdio,
            startFD: startSock, executable: executable, cgroups: cgroups, cleanup: &cleanup, debug: debug
        ) { initPid in
            record.cgroup = cgroups.state
            record.helpers = ProcStat.read(pid: initPid).map { [OwnedProcess(pid: initPid, startTime: $0.startTime)] }
            try store.save(record, durable: false)
        }
        let (initPid, channel, parentSock, consoleFD) = (launched.pid, launched.channel, launched.fds.parent, launched.fds.console)
        debug?("create \(o.id): parent: spawned init stage 1 (pid \(initPid)) and placed it in its cgroup, namespaces new \(plan.newNamespaces) joined \(plan.joinNamespaces.map(\.kind))")

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
                debug?("create \(o.id): parent: writing uid/gid mappings for init stage 1")
                try writeMappings(pid: initPid, plan: plan)
                try channel.send(.mapped)
            case .childPid(let pid):
                debug?("create \(o.id): init stage 1 forked init stage 2 (pid \(pid)); setting up rootfs and process")
                containerPid = pid
                cleanup.pids.append(pid)
                if let stat = ProcStat.read(pid: pid) {
                    record.pid = pid
                    record.pidStartTime = stat.startTime
                    try store.save(record, durable: false)
                }
                CrashPoint.reached("create.child")
                _ = try? Spawn.wait(initPid)
                cleanup.pids.removeAll { $0 == initPid }
                try moveNetDevices(spec.linux?.netDevices ?? [:], into: pid)
            case .runtimeHooks:
                debug?("create \(o.id): init stage 2: mounts done; running prestart/createRuntime hooks")
                do throws(RuntimeError) {
                    try HookRunner.runCreateRuntime(spec.hooks, state: state(.creating))
                    do { try o.runtimeHooks?(state(.creating)) } catch { throw RuntimeError.wrap(error) }
                } catch {
                    try? channel.send(.error(error.description))
                    throw error
                }
                let json = String(decoding: try JSONEncoding.encode(state(.creating)), as: UTF8.self)
                try channel.send(.hooksDone(json))
            case .seccompFD:
                try forwardNotifyFD(passedFD, plan: plan, state: state(.creating))
            case .ready:
                // Without hooks there is no round trip after the mounts: they are done by now.
                if !plan.hooksRoundTrip { debug?("create \(o.id): init stage 2: mounts done (no prestart/createRuntime hooks)") }
                debug?("create \(o.id): init stage 2 ready (pid \(containerPid)), parked until start")
                break loop
            case .error(let message):
                debug?("create \(o.id): init failed: \(message)")
                throw RuntimeError(.system, message)
            case .plan, .placed, .mapped, .hooksDone:
                throw RuntimeError(.internalError, "unexpected message from container init")
            }
        }
        guard containerPid > 0, let stat = ProcStat.read(pid: containerPid) else {
            throw RuntimeError(.system, "container process vanished during create")
        }
        record.pid = containerPid
        record.pidStartTime = stat.startTime
        record.cgroup = cgroups.state
        record.incomplete = nil
        record.helpers = nil
        if let pidFile = o.pidFile {
            try Files.writeAtomically(Files.absolute(pidFile), Array("\(containerPid)".utf8))
        }
        cleanup.disarm()
        for fd in [parentSock, startSock, consoleFD] where fd >= 0 { close(fd) }
        return record
    }


    /// The cgroup state as it will be once created, for recording before anything is made:
    /// `created` lists the directories that do not exist yet (delete removes those if it finds
    /// them), and a populated existing leaf (a pod's) counts as joined, never to be removed.
    /// The manager of the cgroup a container's config asks for (`linux.cgroupsPath`, the systemd
    /// driver, rootless), nothing made yet; the microvm backend places its VMM by the same rules.
    public static func cgroupManager(_ o: CreateOptions, layout: CgroupLayout) throws -> any CgroupManager {
        let path = o.spec.linux?.cgroupsPath
        do {
            if o.systemdCgroup && !systemdRunning() { throw CgroupError.systemdNotRunning }
            return try makeCgroupManager(cgroupsPath: path, containerID: o.id, systemd: o.systemdCgroup,
                                         systemdUser: o.systemdCgroup && o.rootless, layout: layout)
        } catch CgroupError.systemdNotRunning {
            throw RuntimeError(.unsupported, "linux.cgroupsPath \"\(path ?? "")\": --systemd-cgroup requested but systemd is not running")
        }
    }

    public static func prospective(_ state: CgroupState) -> CgroupState {
        var s = state
        var missing: [String] = []
        for leaf in state.paths.values.sorted() {
            var chain: [String] = []
            var p = leaf
            while !p.isEmpty && p != "/" && !Files.exists(p) {
                chain.insert(p, at: 0)
                p = String(p[..<(p.lastIndex(of: "/") ?? p.startIndex)])
            }
            missing += chain.filter { !missing.contains($0) }
            if chain.isEmpty, let procs = try? Files.readString(leaf + "/cgroup.procs"), !procs.isEmpty { s.joinedExisting = true }
        }
        s.created = missing
        return s
    }

    public func start(_ record: ContainerRecord, store: StateStore) throws(RuntimeError) {
        do {
            let conn = try UnixSocket.connect(store.startSocket(record.id))
            defer { close(conn) }
            // The init accepted its one connection: from here on it is started (or dies trying),
            // whether or not this brig lives to read the reply.
            unlink(store.startSocket(record.id))
            CrashPoint.reached("start.connected")
            var state = record.state(.created)
            state.status = .created
            // The init reads the state only for startContainer hooks: none, no JSON to encode.
            if !(record.hooks?.startContainer ?? []).isEmpty { try UnixSocket.send(conn, try JSONEncoding.encode(state)) }
            shutdown(conn, Int32(SHUT_WR))
            var reply: [UInt8] = []
            while true {
                var buf = [UInt8](repeating: 0, count: 65536)
                var passed: Int32 = -1
                let n = try sys("recv") { buf.withUnsafeMutableBytes { brig_recv_fd(conn, &passed, $0.baseAddress, $0.count) } }
                if passed >= 0 {
                    let spec = try? ConfigLoader.decode(try Files.read(record.bundle + "/config.json"))
                    let listener = spec?.linux?.seccomp?.listenerPath
                    defer { close(passed) }
                    if let listener {
                        let payload = ContainerProcessState.json(state: record.state(.running), metadata: spec?.linux?.seccomp?.listenerMetadata)
                        do { try SeccompListener.send(notifyFD: passed, listenerPath: listener, state: payload) } catch {
                            throw RuntimeError(.config, "linux.seccomp.listenerPath: \(error)")
                        }
                    }
                }
                if n == 0 { break }
                reply += buf[0..<n].filter { $0 != 1 }
            }
            if !reply.isEmpty {
                debug?("start \(record.id): init stage 2 failed before exec: \(String(decoding: reply, as: UTF8.self))")
                throw RuntimeError(.system, String(decoding: reply, as: UTF8.self))
            }
            debug?("start \(record.id): init stage 2 (pid \(record.pid)) ran startContainer hooks and exec'd the process")
        } catch { throw RuntimeError.wrap(error, "start \(record.id)") }
    }

    public func facts(_ record: ContainerRecord, store: StateStore) -> LiveFacts {
        let alive = ProcessLiveness.isAlive(pid: record.pid, startTime: record.pidStartTime)
        // Waiting for start: the socket is there and the process still is `brig init`.
        let pending = alive && Files.exists(store.startSocket(record.id)) &&
            ((try? Files.read("/proc/\(record.pid)/cmdline")) ?? []) == Array("brig\0init\0".utf8)
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

    /// As runc: with its own pid namespace, killing init kills the container; otherwise every
    /// process of its cgroup gets the signal (a joined pod cgroup's others are not ours).
    public func terminate(_ record: ContainerRecord) throws(RuntimeError) {
        try kill(record, signal: SIGKILL, all: !NamespacesBackend.isPidNamespaceInit(record.pid))
    }

    /// With state.json unreadable, what can still be found: the container's cgroup at the
    /// default place for its id (`linux.cgroupsPath` unset) on every hierarchy — its processes
    /// are killed and the directories removed, as for any record. Returns warnings.
    public func reclaimUnrecorded(id: String, store: StateStore) -> [String] {
        guard let manager = try? makeCgroupManager(cgroupsPath: nil, containerID: id, systemd: false) else { return [] }
        var record = ContainerRecord.placeholder(id: id)
        record.cgroup = manager.state
        record.cgroup.created = record.cgroup.paths.values.filter { Files.isDirectory($0) }.sorted()
        guard !record.cgroup.created.isEmpty else { return [] }
        var out = ["removing cgroup \(record.cgroup.created.joined(separator: ", ")) and its processes"]
        do { try destroy(record, store: store) } catch { out.append("\(error)") }
        return out
    }

    /// True when `pid` is pid 1 of its own pid namespace (NSpid's last entry).
    static func isPidNamespaceInit(_ pid: Int32) -> Bool {
        guard let status = try? Files.readString("/proc/\(pid)/status"),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("NSpid:") }) else { return false }
        let ids = line.split(whereSeparator: { $0 == "\t" || $0 == " " }).dropFirst()
        return ids.count > 1 && ids.last == "1"
    }

    public func update(_ record: ContainerRecord, resources: Resources) throws(RuntimeError) {
        do { try record.cgroupManager.update(resources) } catch { throw RuntimeError.wrap(error, "update \(record.id)") }
    }

    public func stats(_ record: ContainerRecord) throws(RuntimeError) -> CgroupStats {
        do { return try record.cgroupManager.stats() } catch { throw RuntimeError.wrap(error, "events \(record.id)") }
    }

    public func oomKillCount(_ record: ContainerRecord) throws(RuntimeError) -> UInt64 {
        do { return try record.cgroupManager.oomKillCount() } catch { throw RuntimeError.wrap(error, "events \(record.id)") }
    }

    public func destroy(_ record: ContainerRecord, store: StateStore) throws(RuntimeError) {
        // The processes the record names (a create killed before its init joined the cgroup,
        // or a joined pod cgroup that is not ours to empty), if still the same processes.
        for p in (record.helpers ?? []) + [OwnedProcess(pid: record.pid, startTime: record.pidStartTime)]
        where ProcessLiveness.isAlive(pid: p.pid, startTime: p.startTime) {
            Glibc.kill(p.pid, SIGKILL)
        }
        // Processes left in a cgroup brig created (orphans of a stopped container) die with it;
        // a cgroup that was joined (a pod's) is left alone.
        let cgroups = record.cgroupManager
        cgroups.killRemaining(attempts: 100, interval: timespec(tv_sec: 0, tv_nsec: 2_000_000))
        do { try cgroups.destroy() } catch { throw RuntimeError.wrap(error, "remove cgroup of \(record.id)") }
        unlink(store.startSocket(record.id))
    }
}
