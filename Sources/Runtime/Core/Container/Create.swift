import BrigOCI
import Glibc

extension Containers {
    /// Reserves the id, has the backend chosen by `select` create the container, and saves its
    /// record. On failure everything is removed, state directory included: a container that
    /// was made but not saved (a full state root) is destroyed from the record in hand, then
    /// whatever state.json records (the backend's own undo may have been cut short).
    public func create(_ options: CreateOptions,
                       select: (Spec) throws(RuntimeError) -> BackendKind) throws(RuntimeError) -> ContainerRecord {
        let id = options.id
        let lock = try store.reserve(id)
        defer { lock.unlock() }
        CrashPoint.reached("create.reserved")
        var made: (any Backend, ContainerRecord)? = nil
        do {
            let backend = backends(try select(options.spec))
            let record = try backend.create(options, store: store)
            made = (backend, record)
            CrashPoint.reached("create.ready")
            // Not fsync'd either, like runc's and crun's: the record must outlive brig, not the
            // machine (what it names is gone after a reboot; a torn record deletes as corrupt).
            try store.save(record, durable: false)
            CrashPoint.reached("create.saved")
            return record
        } catch {
            if let (backend, record) = made { try? backend.destroy(record, store: store) }
            do { try store.abandon(id, backend: backend(for:)) } catch let e { warn("\(e)") }
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
