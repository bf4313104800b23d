import BrigOCI

extension Container {
    /// Starts `options.process` in the container (created or running; paused only with
    /// `ignorePaused`); returns its pid once it has exec'd. `spec` is the container's config.
    public func exec(_ options: ExecOptions, spec: Spec, ignorePaused: Bool = false) throws(RuntimeError) -> Int32 {
        try checkExec(ignorePaused: ignorePaused)
        return try backend.exec(options, record: record, spec: spec, store: store)
    }

    /// Whether the status allows `exec` (checked before the caller prepares the process).
    public func checkExec(ignorePaused: Bool = false) throws(RuntimeError) {
        if status == .stopped { throw RuntimeError(.invalidState, "cannot exec in a stopped container") }
        if status == .paused && !ignorePaused { throw RuntimeError(.invalidState, "cannot exec in a paused container") }
    }
}
