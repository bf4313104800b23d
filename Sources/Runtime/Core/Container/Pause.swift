import BrigOCI

extension Container {
    /// Suspends every process of a running container.
    public func pause() throws(RuntimeError) {
        try transition("pause", allowed: Lifecycle.canPause) { () throws(RuntimeError) in try backend.pause(record) }
    }

    /// Resumes a paused container.
    public func resume() throws(RuntimeError) {
        try transition("resume", allowed: Lifecycle.canResume) { () throws(RuntimeError) in try backend.resume(record) }
    }

    func transition(_ op: String, allowed: (ContainerStatus) -> Bool, _ act: () throws(RuntimeError) -> Void) throws(RuntimeError) {
        guard allowed(status) else { throw RuntimeError(.invalidState, "cannot \(op) container \(id): it is \(status.rawValue)") }
        do { try act() } catch { throw RuntimeError.wrap(error, "\(op) \(id)") }
    }
}
