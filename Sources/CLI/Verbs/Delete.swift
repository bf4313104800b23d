import BrigCgroups
import BrigCore
import BrigLinux
import BrigOCI
import Glibc

enum DeleteVerb: Verb {
    static let name = "delete"
    static let usage = "[--force] <container-id>"
    static let summary = "delete a container and everything it holds"
    static let flags = [FlagSpec(["force", "f"], "kill the container first if it is running or paused")]

    static func run(_ args: ParsedArgs, _ ctx: Context) throws(RuntimeError) -> Int32 {
        let id = try requireID(args)
        try StateStore.validate(id: id)
        let store = ctx.store
        let force = args.has("force")
        let lock: ContainerLock
        do { lock = try store.lock(id) } catch {
            // A create killed while preparing its directory left only a hidden staging one.
            if error.kind == .notFound && force { store.sweepStaging(id); return 0 }
            throw error
        }
        defer { lock.unlock() }
        if case .corrupt(let why) = try store.read(id) {
            guard force else {
                throw RuntimeError(.invalidState, "container \(id): \(why); `brig delete --force \(id)` removes it and what it holds")
            }
            ctx.warn("container \(id): \(why): removing its directory and the cgroup at its default path")
            for line in reapDefaultCgroup(id, ctx) { ctx.warn(line) }
            if let e = store.remove(id) { throw RuntimeError.wrap(e) }
            return 0
        }
        try delete(id, ctx, force: force)
        return 0
    }

    static func delete(_ id: String, _ ctx: Context, force: Bool) throws(RuntimeError) {
        let (record, status) = try ctx.load(id)
        let backend = ctx.backend(for: record)
        if status != .stopped {
            guard force || Lifecycle.canDelete(status) else { throw Lifecycle.forbidden("delete", id: id, status: status) }
            // As runc: with its own pid namespace, killing init kills the container; otherwise
            // every process of its cgroup gets the signal.
            try backend.kill(record, signal: SIGKILL, all: !isPidNamespaceInit(record.pid))
            if status == .paused { thaw(record) }
            waitGone(record, backend: backend, store: ctx.store)
        }
        CrashPoint.reached("delete.killed")
        try backend.destroy(record, store: ctx.store)
        CrashPoint.reached("delete.destroyed")
        // A create that never finished never ran the container: no poststop.
        if record.incomplete != true {
            for failure in HookRunner.runAll(record.hooks?.poststop ?? [], kind: "poststop", state: record.state(.stopped)) {
                ctx.warn(failure.description)
            }
        }
        if let e = ctx.store.remove(id) { throw RuntimeError.wrap(e) }
    }

    /// With state.json unreadable, what can still be found: the container's cgroup at the
    /// default place for its id (`linux.cgroupsPath` unset) on every hierarchy — its processes
    /// are killed and the directories removed, as for any record. Returns warnings.
    static func reapDefaultCgroup(_ id: String, _ ctx: Context) -> [String] {
        guard let manager = try? makeCgroupManager(cgroupsPath: nil, containerID: id, systemd: false) else { return [] }
        var record = ContainerRecord.placeholder(id: id)
        record.cgroup = manager.state
        record.cgroup.created = record.cgroup.paths.values.filter { Files.isDirectory($0) }.sorted()
        guard !record.cgroup.created.isEmpty else { return [] }
        var out = ["removing cgroup \(record.cgroup.created.joined(separator: ", ")) and its processes"]
        do { try ctx.backend(.namespaces).destroy(record, store: ctx.store) } catch { out.append("\(error)") }
        return out
    }

    /// True when `pid` is pid 1 of its own pid namespace (NSpid's last entry).
    static func isPidNamespaceInit(_ pid: Int32) -> Bool {
        guard let status = try? Files.readString("/proc/\(pid)/status"),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("NSpid:") }) else { return false }
        let ids = line.split(whereSeparator: { $0 == "\t" || $0 == " " }).dropFirst()
        return ids.count > 1 && ids.last == "1"
    }

    static func thaw(_ record: ContainerRecord) {
        for dir in record.cgroupPaths where Files.exists(dir + "/freezer.state") { try? Files.write(dir + "/freezer.state", "THAWED") }
    }

    static func waitGone(_ record: ContainerRecord, backend: any Backend, store: StateStore) {
        var ts = timespec(tv_sec: 0, tv_nsec: 1_000_000)
        for _ in 0..<10_000 {
            if !backend.facts(record, store: store).alive { return }
            var status: Int32 = 0
            _ = waitpid(record.pid, &status, WNOHANG)
            nanosleep(&ts, nil)
        }
    }
}
