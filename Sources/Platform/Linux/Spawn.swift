import CBrigShim
import Glibc

/// posix_spawn with explicit fd placement. Used for `brig init`, hooks, and helpers; safe to call
/// from any thread because no Swift code runs in the child.
public enum Spawn {
    public struct Options {
        public var path: String
        public var args: [String]
        public var env: [String]
        /// (source fd, target fd) pairs applied with dup2 in the child, in order.
        public var fds: [(Int32, Int32)] = []
        /// Close every fd past 2 in the child (after the dup2s), even ones without O_CLOEXEC.
        public var stdioOnly = false
        /// The child's working directory (nil: the caller's).
        public var cwd: String? = nil
        public init(path: String, args: [String], env: [String]) { self.path = path; self.args = args; self.env = env }
    }

    public static func spawn(_ o: Options) throws(SystemError) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (src, dst) in o.fds { posix_spawn_file_actions_adddup2(&actions, src, dst) }
        if o.stdioOnly { _ = brig_spawn_addclosefrom(&actions, 3) }
        if let cwd = o.cwd { _ = brig_spawn_addchdir(&actions, cwd) }
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        // Reset signal dispositions and mask so a parent's handlers don't leak in.
        var all = sigset_t(); sigfillset(&all)
        var none = sigset_t(); sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        var pid: pid_t = 0
        let rc = withCArrays(o) { argv, envp in posix_spawn(&pid, o.path, &actions, &attr, argv, envp) }
        if rc != 0 { throw SystemError(errno: rc, "exec \(o.path)") }
        return pid
    }

    /// `o`'s args and env as NULL-terminated arrays of C strings, alive during `body`.
    private static func withCArrays<R>(_ o: Options, _ body: ([UnsafeMutablePointer<CChar>?], [UnsafeMutablePointer<CChar>?]) -> R) -> R {
        let argv = o.args.map { strdup($0) } + [nil]
        let envp = o.env.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) }; envp.forEach { free($0) } }
        return body(argv, envp)
    }

    /// Like `spawn`, with the child born in the cgroup2 directory open at `cgroupFD`
    /// (clone3 CLONE_INTO_CGROUP: no migration afterwards). nil when the kernel would not clone
    /// into it (too old, another architecture, or the cgroup refused): nothing was spawned,
    /// and the caller spawns as before and moves the child itself.
    public static func spawn(_ o: Options, intoCgroup cgroupFD: Int32) throws(SystemError) -> pid_t? {
        if o.stdioOnly || o.cwd != nil { return nil }
        let pairs = o.fds.flatMap { [$0.0, $0.1] }
        var execErrno: Int32 = 0
        let pid = withCArrays(o) { argv, envp in
            brig_spawn_into_cgroup(o.path, argv, envp, pairs, Int32(o.fds.count), cgroupFD, &execErrno)
        }
        if execErrno != 0 { throw SystemError(errno: execErrno, "exec \(o.path)") }
        return pid > 0 ? pid : nil
    }

    /// Spawns `o` with one pipe on every fd in `capture` (e.g. [1] or [1, 2]), reads it to EOF,
    /// and waits: the exit and what the child wrote there.
    public static func output(_ o: Options, capture: [Int32] = [1]) throws(SystemError) -> (exit: Exit, output: [UInt8]) {
        let (r, w) = try Files.pipe()
        var o = o
        o.fds += capture.map { (w, $0) }
        let pid: pid_t
        do { pid = try spawn(o) } catch { close(r); close(w); throw error }
        close(w)
        let out = Result { () throws(SystemError) in try Files.read(fd: r) }
        close(r)
        let exit = try wait(pid)
        return (exit, try out.get())
    }

    public enum Exit: Equatable, Sendable {
        case exited(Int32), signaled(Int32)
        /// The exit status as a shell reports it (128+N for a signal).
        public var code: Int32 {
            switch self { case .exited(let c): return c; case .signaled(let s): return 128 + s }
        }
    }

    public static func decode(_ status: Int32) -> Exit {
        brig_wifsignaled(status) != 0 ? .signaled(brig_wtermsig(status)) : .exited(brig_wexitstatus(status))
    }

    public static func wait(_ pid: pid_t) throws(SystemError) -> Exit {
        var status: Int32 = 0
        try sys("wait for \(pid)") { brig_waitpid(pid, &status, 0) }
        return decode(status)
    }

    /// Waits up to `timeout` seconds; on expiry kills the child with SIGKILL and returns nil.
    public static func wait(_ pid: pid_t, timeout: Double, poll: () -> Void = {}) throws(SystemError) -> Exit? {
        var status: Int32 = 0
        var waited = 0.0, step = 0.0005
        while true {
            poll()
            let r = try sys("wait for \(pid)") { brig_waitpid(pid, &status, WNOHANG) }
            if r == pid { poll(); return decode(status) }
            if waited >= timeout {
                kill(pid, SIGKILL); _ = try? wait(pid); return nil
            }
            var ts = timespec(tv_sec: 0, tv_nsec: Int(step * 1e9))
            nanosleep(&ts, nil)
            waited += step
            step = min(step * 2, 0.05)
        }
    }
}
