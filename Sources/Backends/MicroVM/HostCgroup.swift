import BrigCgroups
import BrigCore
import BrigLinux
import BrigNamespaces
import BrigOCI
import Glibc

/// The host cgroup of a microvm container (as Kata's sandbox_cgroup_only): its monitor — the VMM,
/// with every vCPU, device and relay thread — runs in the cgroup at the config's
/// `linux.cgroupsPath`, or where the namespaces backend would place the container, made by the
/// same managers (cgroup v2, hybrid/v1, the systemd driver's transient scope, a rootless
/// delegated subtree). So the engine (kubelet, systemd, podman) accounts, freezes and removes
/// the VM as the container's cgroup.
///
/// The container's limits are the guest's: brig-agent applies `linux.resources` in the guest's
/// cgroups, and the guest's RAM and vCPUs are sized from them (docs/microvm.md). The host cgroup
/// gets none (the VMM's own memory and threads on top of the guest's are not sized soundly from
/// the spec), and no device rules: the VMM opens /dev/kvm, /dev/net/tun and vhost devices.
/// The host-agent transport has none: its containers are already in host cgroups (the agent's).
struct HostCgroup {
    var manager: any CgroupManager

    /// Where the monitor goes, resolved as the namespaces backend resolves a container's cgroup.
    /// Nothing is made yet: the plan is recorded first (`prospective`), then `make`.
    static func plan(_ o: CreateOptions, layout: () throws -> CgroupLayout = { try CgroupLayout.current() }) throws(RuntimeError) -> HostCgroup {
        do {
            let m = try NamespacesBackend.cgroupManager(o, layout: try layout())
            m.skipDevices = true
            return HostCgroup(manager: m)
        } catch let e as RuntimeError {
            throw e
        } catch {
            throw RuntimeError(.config, "linux.cgroupsPath \"\(o.spec.linux?.cgroupsPath ?? "")\": \(error)")
        }
    }

    /// As recorded before anything is made: the directories still to be made (which a
    /// `delete --force` after a killed brig removes), a populated existing one as joined.
    var prospective: CgroupRecord { CgroupRecord(NamespacesBackend.prospective(manager.state)) }
    /// As it is now (a systemd unit started by `place`).
    var record: CgroupRecord { CgroupRecord(manager.state) }

    /// Makes the cgroup, or joins an existing populated one with the namespaces backend's
    /// warning; a frozen one is refused (the monitor would block in it). Rootless where the user
    /// may not make one and no `linux.cgroupsPath` asks for one, the monitor stays in the caller's
    /// cgroup, as runc runs such a container: `manager` is then NoCgroupManager.
    mutating func make(_ o: CreateOptions, warn: (String) -> Void, debug: ((String) -> Void)?) throws(RuntimeError) {
        do {
            if try manager.join() {
                warn("container's cgroup is not empty: \((try? manager.pids().count) ?? 0) process(es) found")
            }
        } catch let e as CgroupError where o.rootless && e.isPermissionDenied && (o.spec.linux?.cgroupsPath ?? "").isEmpty {
            debug?("rootless: the VM monitor runs without a cgroup of its own: \(e)")
            try? manager.destroy()
            manager = NoCgroupManager(mode: manager.mode)
        } catch let e as CgroupError {
            let hint = o.rootless && e.isPermissionDenied ? " (rootless: a cgroupsPath needs a cgroup subtree delegated to the user)" : ""
            throw RuntimeError(.config, "\(e)\(hint)")
        } catch {
            throw RuntimeError(.config, "linux.cgroupsPath \"\(o.spec.linux?.cgroupsPath ?? "")\": \(error)")
        }
    }

    /// The directory the monitor can be born in (clone3 CLONE_INTO_CGROUP), if any.
    var spawnDirectory: String? { manager.spawnDirectory }

    /// Moves a monitor that could not be born in the cgroup into it (it waits for this before it
    /// does anything: no thread or process of its exists elsewhere).
    func place(_ pid: pid_t) throws(RuntimeError) {
        do { try manager.addProcess(pid) } catch {
            throw RuntimeError(.system, "moving the VM monitor into its cgroup \(manager.state.paths.values.sorted().joined(separator: ", ")): \(error)")
        }
    }

    /// The recorded cgroup's manager (nil: an older record, the host-agent transport).
    static func of(_ record: ContainerRecord) -> HostCgroup? {
        guard case .microvm(let h) = record.handle, let r = h.cgroup, !r.paths.isEmpty else { return nil }
        return HostCgroup(manager: makeCgroupManager(state: CgroupState(r)))
    }

    func isFrozen() -> Bool { (try? manager.isFrozen()) ?? false }

    func freeze() throws(RuntimeError) {
        releaseKernelThreads()
        do { try manager.freeze() } catch { throw RuntimeError.wrap(error, "freezing the VM's cgroup") }
    }

    /// KVM attaches a kernel thread of its own to the VMM's cgroups when the VM is made
    /// (`kvm-nx-lpage-recovery-<pid>`, a kthread on the kernels brig is tested on: 6.1). cgroup v2's
    /// freezer never freezes a kernel thread and never reports a cgroup holding one frozen (runc
    /// would time out the same way), so on a unified host such threads are moved to the root cgroup
    /// (the v1 freezer skips them: nothing to do there). Its periodic work is then the root's.
    func releaseKernelThreads() {
        guard manager.mode == .unified, let root = manager.state.unifiedMount else { return }
        for pid in (try? manager.pids()) ?? [] where Self.isKernelThread(pid) {
            _ = try? Files.write(root + "/cgroup.procs", "\(pid)", flags: O_WRONLY)
        }
    }

    /// A child of kthreadd with no command line.
    static func isKernelThread(_ pid: pid_t) -> Bool {
        guard ProcStat.read(pid: pid)?.ppid == 2 else { return false }
        return ((try? Files.read("/proc/\(pid)/cmdline")) ?? [0]).isEmpty
    }

    func thaw() throws(RuntimeError) {
        do { try manager.thaw() } catch { throw RuntimeError.wrap(error, "thawing the VM's cgroup") }
    }

    /// Thawed (a frozen process dies only once thawed on v1), emptied of what is left in a cgroup
    /// brig made (a joined pod's others are not ours), then removed.
    func destroy(id: String) throws(RuntimeError) {
        if isFrozen() { try? manager.thaw() }
        manager.killRemaining(attempts: 500, interval: timespec(tv_sec: 0, tv_nsec: 4_000_000))
        do { try manager.destroy() } catch { throw RuntimeError.wrap(error, "remove cgroup of \(id)") }
    }
}
