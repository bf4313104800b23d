import Glibc

/// Deterministic crash tests: with `BRIG_TEST_MODE=crash` AND `BRIG_TEST_KILL_AT=<point>` in the
/// environment, brig SIGKILLs itself when it reaches the named point (see `points`), so a test
/// can assert that a brig killed at exactly that step leaves nothing behind. Both variables are
/// needed; without them this is one getenv per point. Points in `brig init` (`init.*`) kill the
/// brig process that spawned it (`BRIG_TEST_KILL_PID`), since that is the crash being tested.
public enum CrashPoint {
    public static let modeVariable = "BRIG_TEST_MODE"
    public static let pointVariable = "BRIG_TEST_KILL_AT"
    public static let pidVariable = "BRIG_TEST_KILL_PID"

    /// Every point, in the order a lifecycle reaches them.
    public static let points = [
        "create.staged",     // state directory made and locked under its staging name (namespaces: with state.json)
        "create.reserved",   // state directory in place and locked (microvm: nothing recorded yet)
        "create.recorded",   // state.json records the cgroup paths, none created yet
        "create.cgroups",    // cgroups created and limits applied
        "create.spawned",    // brig init spawned, not yet in the cgroup
        "create.placed",     // brig init in the cgroup, plan not yet sent
        "init.namespaces",   // brig init: namespaces made, before the fork
        "init.forked",       // brig init: the container process forked (brig does not know its pid yet)
        "create.child",      // the container pid recorded
        "create.ready",      // the container is parked, final state not yet saved
        "create.saved",      // the final state saved, create about to return
        "start.connected",   // start: connected to the start socket
        "exec.spawned",      // exec: brig init spawned, not yet in the container's cgroup
        "exec.placed",       // exec: in the cgroup, plan not yet sent
        "delete.killed",     // delete: processes killed, cgroups not yet removed
        "delete.destroyed",  // delete: cgroups removed, state directory not yet
    ]

    /// The microvm backend's create, between `create.reserved` and `create.ready` (tested in the
    /// VM test host: e2e/vmhost/microvm-e2e.sh, case 11).
    public static let microvmPoints = [
        "microvm.recorded",  // state.json records the backend and state dir, nothing acquired yet
        "microvm.image",     // the disk image copied into the state dir, no monitor yet
        "microvm.spawned",   // the monitor (VMM) spawned, its pid not yet recorded
        "microvm.monitor",   // the monitor's pid recorded; the VM boots
    ]

    public static var armed: Bool {
        guard let mode = getenv(modeVariable), String(cString: mode) == "crash" else { return false }
        return getenv(pointVariable) != nil
    }

    /// SIGKILLs this process (or, in brig init, the brig that spawned it) at `point` when asked.
    public static func reached(_ point: String) {
        guard armed, let at = getenv(pointVariable), String(cString: at) == point else { return }
        if point.hasPrefix("init."), let p = getenv(pidVariable), let pid = Int32(String(cString: p)) {
            Glibc.kill(pid, SIGKILL)
            return
        }
        Glibc.kill(getpid(), SIGKILL)
        pause()
    }

    /// The variables `brig init` needs to honour its points (empty unless armed).
    public static func initEnvironment() -> [String] {
        guard armed, let at = getenv(pointVariable) else { return [] }
        return ["\(modeVariable)=crash", "\(pointVariable)=\(String(cString: at))", "\(pidVariable)=\(getpid())"]
    }
}
