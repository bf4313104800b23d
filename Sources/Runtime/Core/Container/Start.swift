import BrigOCI

extension Container {
    /// Releases the parked process, then runs the poststart hooks (their failures are warnings;
    /// the container keeps running, runtime.md).
    public func start() throws(RuntimeError) {
        guard Lifecycle.canStart(status) else { throw Lifecycle.forbidden("start", id: id, status: status) }
        try backend.start(record, store: store)
        HookRunner.run(.poststart, record.hooks, state: record.state(.running), warn: containers.warn)
    }
}
