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
        let lock: ContainerLock
        do { lock = try store.lock(id) } catch {
            // A directory without state.json is an aborted create: remove it, as runc does.
            if error.kind == .notFound {
                store.remove(id)
                if args.has("force") { return 0 }
            }
            throw error
        }
        defer { lock.unlock() }
        try delete(id, ctx, force: args.has("force"))
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
        try backend.destroy(record, store: ctx.store)
        for failure in HookRunner.runAll(record.hooks?.poststop ?? [], kind: "poststop", state: record.state(.stopped)) {
            ctx.warn(failure.description)
        }
        ctx.store.remove(id)
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
