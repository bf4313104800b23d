import BrigAgentProtocol
import BrigCgroups
import BrigCore
import BrigLinux
import BrigNamespaces
import BrigOCI
import Glibc

/// A running microvm container's status and control: its monitor (the VMM) is the state pid, its
/// host cgroup (HostCgroup) holds the monitor; `pause` stops the vCPUs and freezes that cgroup.
extension MicroVMBackend {
    public func facts(_ record: ContainerRecord, store: StateStore) -> LiveFacts {
        let info = Info(record)
        guard let stat = ProcStat.read(pid: record.pid), stat.startTime == record.pidStartTime, stat.state != "Z" else {
            return LiveFacts(alive: false, startPending: false, frozen: false)
        }
        return LiveFacts(alive: true, startPending: Files.exists(info.pendingStart), frozen: Self.paused(record, stat: stat))
    }

    /// Paused: the monitor is stopped (its vCPUs with it), or its host cgroup is frozen.
    static func paused(_ record: ContainerRecord, stat: ProcStat? = nil) -> Bool {
        let state = (stat ?? ProcStat.read(pid: record.pid))?.state
        return state == "T" || state == "t" || HostCgroup.of(record)?.isFrozen() == true
    }

    public func kill(_ record: ContainerRecord, signal: Int32, all: Bool) throws(RuntimeError) {
        let info = Info(record)
        do throws(RuntimeError) {
            if Self.paused(record) { throw RuntimeError(.invalidState, "paused") }
            let session = try info.endpoint.session(timeout: 1)
            try Self.mayEndContainer(record) { () throws(AgentError) in
                try session.client.kill(id: record.id, execID: nil, signal: signal, all: all)
            }
        } catch {
            // A paused VM (or a dead agent) cannot be asked; SIGKILL still ends it, VM and all.
            // A stopped container's monitor is gone: nothing to signal (`kill --all` succeeds,
            // as with runc), and its pid may belong to someone else by now.
            let alive = Self.monitorAlive(record)
            if !alive && all { return }
            guard signal == SIGKILL, alive else { throw error }
            Glibc.kill(record.pid, SIGKILL)
            Glibc.kill(record.pid, SIGCONT)
            // A frozen process dies only once thawed (cgroup v1; runc thaws after the kill too).
            if let host = HostCgroup.of(record), host.isFrozen() { try? host.thaw() }
        }
    }

    public func pause(_ record: ContainerRecord) throws(RuntimeError) {
        guard Info(record).mode != .hostAgent else {
            throw RuntimeError(.unsupported, "pause: the host-agent transport has no VM whose vCPUs could be paused")
        }
        // Stopping the VMM process stops every vCPU thread: the whole guest is paused. Then its
        // host cgroup is frozen (what an engine or kubelet reads as paused); undone if that fails.
        guard Glibc.kill(record.pid, SIGSTOP) == 0 else { throw RuntimeError.wrap(SystemError.last("pause \(record.id)")) }
        guard let host = HostCgroup.of(record) else { return }
        Self.waitStopped(record.pid)
        do throws(RuntimeError) { try host.freeze() } catch {
            Glibc.kill(record.pid, SIGCONT)
            throw error
        }
    }

    /// Until every thread of `pid` is stopped (a group stop takes each thread out of KVM_RUN), at
    /// most a second: a freeze that came first would hold threads in the freezer instead.
    static func waitStopped(_ pid: pid_t) {
        for _ in 0..<1000 {
            let tasks = (try? Files.list("/proc/\(pid)/task")) ?? []
            if tasks.allSatisfy({ t in
                let state = ProcStat.parse((try? Files.readString("/proc/\(pid)/task/\(t)/stat")) ?? "")?.state
                return state == nil || state == "T" || state == "t"
            }) { return }
            var ts = timespec(tv_sec: 0, tv_nsec: 1_000_000); nanosleep(&ts, nil)
        }
    }

    /// Thaws the host cgroup, then lets the vCPUs run again.
    public func resume(_ record: ContainerRecord) throws(RuntimeError) {
        try HostCgroup.of(record)?.thaw()
        guard Glibc.kill(record.pid, SIGCONT) == 0 else { throw RuntimeError.wrap(SystemError.last("resume \(record.id)")) }
    }

    public func pids(_ record: ContainerRecord) throws(RuntimeError) -> [Int32] {
        // A stopped container has no processes (runc's ps succeeds with none); its VM is gone.
        guard Self.monitorAlive(record) else { return [] }
        // runc reads a paused container's processes from its cgroup; a paused VM's are in the
        // guest, whose agent cannot answer while its vCPUs are stopped.
        if Self.paused(record) {
            throw RuntimeError(.invalidState, "ps \(record.id): the container is paused (its VM's vCPUs are stopped, so its agent cannot list the processes): resume it first")
        }
        let info = Info(record)
        let session = try info.endpoint.session(timeout: Info.requestTimeout)
        return try session.ps(id: record.id)
    }

    /// What `exec` refuses before anything starts: host fds, a paused VM (`--ignore-paused`:
    /// nothing runs while its vCPUs are stopped) and an `exec --cgroup` path that leaves the
    /// container's cgroup (as runc refuses it). The sub-cgroup itself is the guest's: the agent
    /// places the process there (and refuses a controller the guest's cgroups do not have).
    static func checkExec(_ o: ExecOptions, record: ContainerRecord) throws(RuntimeError) {
        if o.preserveFDs > 0 { throw RuntimeError(.unsupported, "--preserve-fds: host file descriptors cannot be passed into a microvm") }
        if !o.subCgroups.isEmpty {
            let base = CgroupState(mode: .unified, paths: Dictionary(uniqueKeysWithValues: o.subCgroups.keys.map { ($0, "/container") }))
            _ = try NamespacesBackend.execCgroup(base, sub: o.subCgroups)
        }
        if monitorAlive(record) && paused(record) {
            throw RuntimeError(.invalidState, "cannot exec in a paused container: its VM's vCPUs are stopped (--ignore-paused cannot run anything in it)")
        }
    }

    public func destroy(_ record: ContainerRecord, store: StateStore) throws(RuntimeError) {
        // Thawed first: a frozen monitor would not die (v1), and the wait for it would hang.
        let host = HostCgroup.of(record)
        if host?.isFrozen() == true { try? host?.thaw() }
        stopMonitor(id: record.id, pid: record.pid, startTime: record.pidStartTime, info: Info(record))
        try host?.destroy(id: record.id)
    }
}
