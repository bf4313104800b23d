import BrigOCI

extension Container {
    /// Signals the init, or with `all` every process. With `all` a stopped container is not an
    /// error (as in runc): its init is gone but processes it left in its cgroup get the signal.
    /// containerd's runc shim sends `kill --all ID KILL` after a container's init exits and
    /// fails StopContainer if that fails.
    public func kill(signal: Int32, all: Bool) throws(RuntimeError) {
        guard Lifecycle.canKill(status) || all else { throw Lifecycle.forbidden("kill", id: id, status: status) }
        try backend.kill(record, signal: signal, all: all)
    }
}
