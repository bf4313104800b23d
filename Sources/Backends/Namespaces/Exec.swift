import BrigCgroups
import BrigCore
import BrigLinux
import BrigOCI
import BrigSeccomp
import CBrigShim
import Glibc

/// `exec`: a process joining a running container (its cgroup, or a sub-cgroup `exec --cgroup`
/// names), and the hand-off of a seccomp notify fd to the listener.
extension NamespacesBackend {
    public func exec(_ o: ExecOptions, record: ContainerRecord, spec: Spec, store: StateStore) throws(RuntimeError) -> Int32 {
        do {
            let plan = try LaunchPlan.forExec(spec: spec, process: o.process, id: record.id, bundle: record.bundle,
                                              containerPid: record.pid, preserveFDs: o.preserveFDs)
            var cleanup = Cleanup(cgroups: nil)
            defer { cleanup.run() }
            // The exec'd process belongs to the container's cgroup (leaf directories), or to the
            // sub-cgroup `exec --cgroup` names.
            let cgroups = try makeCgroupManager(state: try NamespacesBackend.execCgroup(record.cgroup, sub: o.subCgroups))
            let launched = try InitFDs.launch(
                plan, step: "exec", preserve: o.preserveFDs, consoleFD: o.consoleFD, consoleSocket: o.consoleSocket, stdio: o.stdio,
                startFD: nil, executable: executable, cgroups: cgroups, cleanup: &cleanup, debug: debug) { _ in }
            let (initPid, channel, parentSock, consoleFD) = (launched.pid, launched.channel, launched.fds.parent, launched.fds.console)
            debug?("exec in \(record.id): parent: spawned init stage 1 (pid \(initPid)) and placed it, joining the container's namespaces")
            var pid: Int32 = 0
            while let (message, passedFD) = try channel.receiveWithFD() {
                switch message {
                case .seccompFD:
                    try forwardNotifyFD(passedFD, plan: plan, state: record.state(.running))
                case .childPid(let p):
                    debug?("exec in \(record.id): init stage 2 (pid \(p)) setting up the process and exec'ing")
                    pid = p
                    cleanup.pids.append(p)
                    _ = try? Spawn.wait(initPid)
                    cleanup.pids.removeAll { $0 == initPid }
                case .error(let text):
                    debug?("exec in \(record.id): init failed: \(text)")
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

    /// The cgroup an exec'd process joins: the container's, or below it with `exec --cgroup`
    /// (runc 1.1): "" applies to every hierarchy, a controller name to the hierarchy that has it;
    /// a path that leaves the container's cgroup is refused (runc: "is not a sub cgroup path").
    public static func execCgroup(_ state: CgroupState, sub: [String: String]) throws(RuntimeError) -> CgroupState {
        var s = state
        for (ctrl, add) in sub.sorted(by: { $0.key < $1.key }) {
            let keys = ctrl.isEmpty ? Array(state.paths.keys)
                : state.paths.keys.filter { $0 != "" && $0.split(separator: ",").contains { $0 == ctrl } }
            if keys.isEmpty { throw RuntimeError(.usage, "--cgroup: unknown controller \(ctrl) (not one of the container's hierarchies)") }
            for key in keys {
                let base = state.paths[key]!
                let joined = LaunchPlan.clean(base + "/" + add)
                guard joined == base || joined.hasPrefix(base + "/") else {
                    throw RuntimeError(.usage, "--cgroup: \(add) is not a sub cgroup path")
                }
                s.paths[key] = joined
            }
        }
        return s
    }

    /// Hands a seccomp notify fd to `linux.seccomp.listenerPath` with the container state (runc's
    /// ContainerProcessState), then closes our copy.
    func forwardNotifyFD(_ fd: Int32, plan: LaunchPlan, state: ContainerState) throws {
        defer { if fd >= 0 { close(fd) } }
        guard fd >= 0, let path = plan.seccomp?.listenerPath else {
            throw RuntimeError(.internalError, "seccomp notify fd without a listener")
        }
        let payload = ContainerProcessState.json(state: state, metadata: plan.seccomp?.listenerMetadata)
        do { try SeccompListener.send(notifyFD: fd, listenerPath: path, state: payload) } catch {
            throw RuntimeError(.config, "linux.seccomp.listenerPath: \(error)")
        }
    }
}
