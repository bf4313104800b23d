import BrigOCI
import Glibc

extension Containers {
    /// Has the backend chosen by `select` create the container (it reserves the id once it
    /// knows what the container will hold), and saves its record. On failure everything is removed, state directory included: a container that
    /// was made but not saved (a full state root) is destroyed from the record in hand, then
    /// whatever state.json records (the backend's own undo may have been cut short).
    public func create(_ options: CreateOptions,
                       select: (Spec) throws(RuntimeError) -> BackendKind) throws(RuntimeError) -> ContainerRecord {
        let id = options.id
        try store.checkAvailable(id)  // before the backend checks the config, as the reservation used to be
        var lock: ContainerLock? = nil
        defer { lock?.unlock() }
        var made: (any Backend, ContainerRecord)? = nil
        do throws(RuntimeError) {
            let backend = backends(try select(options.spec))
            let record = try backend.create(options, store: store) { (first: ContainerRecord?) throws(RuntimeError) in
                guard lock == nil else { throw RuntimeError(.internalError, "create \(id): reserved twice") }
                lock = try store.reserve(id, record: first)
                CrashPoint.reached("create.reserved")
            }
            guard lock != nil else { throw RuntimeError(.internalError, "create \(id): the backend did not reserve the id") }
            made = (backend, record)
            CrashPoint.reached("create.ready")
            // Not fsync'd either, like runc's and crun's: the record must outlive brig, not the
            // machine (what it names is gone after a reboot; a torn record deletes as corrupt).
            try store.save(record, durable: false)
            CrashPoint.reached("create.saved")
            return record
        } catch {
            if let (backend, record) = made { try? backend.destroy(record, store: store) }
            // Not reserved (invalid config, or the id taken meanwhile): nothing of ours to remove.
            if lock != nil { do { try store.abandon(id, backend: backend(for:)) } catch let e { warn("\(e)") } }
            throw error
        }
    }

    /// Removes a container whose create succeeded but whose caller cannot go on with it (the
    /// agent failing to track its stdio): kills it, releases what it holds, removes its state.
    public func abandon(_ record: ContainerRecord) {
        let backend = backend(for: record)
        try? backend.kill(record, signal: SIGKILL, all: true)
        try? backend.destroy(record, store: store)
        do { try store.abandon(record.id, backend: self.backend(for:)) } catch { warn("\(error)") }
    }
}
