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
            for line in try ctx.containers.removeCorrupt(id) { ctx.warn(line) }
            return 0
        }
        try delete(id, ctx, force: force)
        return 0
    }

    static func delete(_ id: String, _ ctx: Context, force: Bool) throws(RuntimeError) {
        try ctx.load(id).delete(force: force)
    }

}
