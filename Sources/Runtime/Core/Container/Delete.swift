import BrigLinux
import BrigOCI
import Glibc

extension Containers {
    /// `delete --force` of a container whose state.json is unreadable: each backend releases
    /// what it can find from the id (the namespaces backend: the cgroup at its default path),
    /// then the directory goes. Returns warnings.
    public func removeCorrupt(_ id: String) throws(RuntimeError) -> [String] {
        var out: [String] = []
        for kind in BackendKind.allCases { out += backends(kind).reclaimUnrecorded(id: id, store: store) }
        if let e = store.remove(id) { throw RuntimeError.wrap(e) }
        return out
    }
}

extension Container {
    /// Kills what still runs (with `force`, or a created container), releases what the
    /// container holds, runs the poststop hooks and removes its state directory.
    public func delete(force: Bool) throws(RuntimeError) {
        if status != .stopped {
            guard force || Lifecycle.canDelete(status) else { throw Lifecycle.forbidden("delete", id: id, status: status) }
            try backend.terminate(record)
            // A frozen process does not die until thawed.
            if status == .paused { try? backend.resume(record) }
            waitGone()
        }
        CrashPoint.reached("delete.killed")
        try backend.destroy(record, store: store)
        CrashPoint.reached("delete.destroyed")
        // A create that never finished never ran the container: no poststop.
        if record.incomplete != true {
            HookRunner.run(.poststop, record.hooks, state: record.state(.stopped), warn: containers.warn)
        }
        if let e = store.remove(id) { throw RuntimeError.wrap(e) }
    }

    func waitGone() {
        var ts = timespec(tv_sec: 0, tv_nsec: 1_000_000)
        for _ in 0..<10_000 {
            if !backend.facts(record, store: store).alive { return }
            if containers.reapsChildren {
                var status: Int32 = 0
                _ = waitpid(record.pid, &status, WNOHANG)
            }
            nanosleep(&ts, nil)
        }
    }
}
