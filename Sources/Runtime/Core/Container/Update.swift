import BrigOCI

extension Container {
    /// New resource limits for a container that is not stopped.
    public func update(_ resources: Resources) throws(RuntimeError) {
        try checkNotStopped()
        try backend.update(record, resources: resources)
    }

    /// The container's resource counters (`events`).
    public func stats() throws(RuntimeError) -> CgroupStats {
        try backend.stats(record)
    }

    /// OOM kills so far (`events`).
    public func oomKillCount() throws(RuntimeError) -> UInt64 {
        try backend.oomKillCount(record)
    }

    public func checkNotStopped() throws(RuntimeError) {
        if status == .stopped { throw RuntimeError(.invalidState, "container \(id) is not running") }
    }
}
