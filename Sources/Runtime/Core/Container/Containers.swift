import BrigLinux
import BrigOCI

/// The containers under one state store, and the one place each operation's orchestration
/// lives — load, derive the status, check what the lifecycle allows, ask the backend, run the
/// hooks at their point — one file per operation. The CLI's verbs and brig-agent's requests
/// both go through it; neither knows which backend runs a container.
public struct Containers {
    public let store: StateStore
    /// The backend that runs (or will run) containers of a kind.
    public let backends: (BackendKind) -> any Backend
    /// Warnings (failing poststart/poststop hooks, a failed clean-up): logged, never fatal.
    public var warn: (String) -> Void
    /// Reap the container's init while waiting for it to die (brig as its parent: `run`);
    /// brig-agent reaps its children in its own loop.
    public var reapsChildren = true

    public init(store: StateStore, warn: @escaping (String) -> Void = { _ in },
                backends: @escaping (BackendKind) -> any Backend) {
        self.store = store; self.warn = warn; self.backends = backends
    }

    /// The backend that runs `record`.
    public func backend(for record: ContainerRecord) -> any Backend {
        backends(record.handle.kind)
    }

    /// Loads a container and derives its status from live facts.
    /// A record whose create did not finish is `creating` while its creator holds the lock and
    /// `stopped` once that brig is gone (it was killed): `delete` then removes what it recorded.
    public func load(_ id: String) throws(RuntimeError) -> Container {
        let record = try store.load(id)
        let backend = backend(for: record)
        let status: ContainerStatus
        if record.incomplete == true { status = store.isLockedElsewhere(id) ? .creating : .stopped }
        else { status = Lifecycle.status(backend.facts(record, store: store)) }
        return Container(record: record, status: status, backend: backend, containers: self)
    }
}

/// A loaded container: its record, the status derived when it was loaded, and its backend.
/// Its operations are in the files next to this one.
public struct Container {
    public let record: ContainerRecord
    public let status: ContainerStatus
    public let backend: any Backend
    let containers: Containers

    public var id: String { record.id }
    var store: StateStore { containers.store }
    /// The OCI state (`brig state`).
    public var state: ContainerState { record.state(status) }
}
