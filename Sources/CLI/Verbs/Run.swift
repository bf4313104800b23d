import BrigCore
import BrigLinux
import BrigOCI
import CBrigShim
import Glibc

enum RunVerb: Verb {
    static let name = "run"
    static let usage = "[--detach] [--bundle DIR] [--pid-file FILE] [--console-socket PATH] <container-id>"
    static let summary = "create and start a container; in the foreground, wait and return its exit status"
    static let flags = CreateVerb.flags + [
        FlagSpec(["detach", "d"], "detach from the container's process"),
        FlagSpec(["keep"], "do not delete the container after it exits"),
    ]

    /// Signals forwarded to the container in the foreground (runc forwards all but SIGCHLD,
    /// SIGWINCH which resizes the tty, and SIGURG).
    static let forwarded: [Int32] = [SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGPIPE, SIGALRM, SIGCONT, SIGTSTP, SIGTTIN, SIGTTOU]

    static func run(_ args: ParsedArgs, _ ctx: Context) throws(RuntimeError) -> Int32 {
        let id = try requireID(args)
        let detach = args.has("detach")
        if detach {
            _ = try CreateVerb.create(args, ctx, id: id, detach: true)
            try startLocked(id, ctx)
            return 0
        }
        // Foreground: we become the subreaper, so the container process (orphaned when the
        // first-stage init exits) is our child and we get its exit status.
        _ = brig_set_child_subreaper()
        let signals = forwarded + [SIGCHLD, SIGWINCH]
        let sigfd = signals.withUnsafeBufferPointer { brig_signalfd($0.baseAddress, Int32($0.count)) }
        guard sigfd >= 0 else { throw RuntimeError.wrap(SystemError.last("signalfd")) }

        var consolePair: (Int32, Int32)? = nil
        let (_, spec) = try Bundle.load(args.value("bundle"))
        if spec.process?.terminal == true && args.value("console-socket") == nil {
            var fds: [Int32] = [-1, -1]
            guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
                throw RuntimeError.wrap(SystemError.last("socketpair"))
            }
            consolePair = (fds[0], fds[1])
        }
        let record = try CreateVerb.create(args, ctx, id: id, detach: false, consoleFD: consolePair?.1)
        var master: Int32 = -1
        if let (mine, theirs) = consolePair {
            close(theirs)
            master = (try? UnixSocket.receiveFD(mine).fd) ?? -1
            close(mine)
        }
        do { try startLocked(id, ctx) } catch {
            try? DeleteVerb.delete(id, ctx, force: true)
            throw error
        }
        let code = TerminalProxy(master: master, signalFD: sigfd, pid: record.pid).run()
        if !args.has("keep") {
            let lock = try? ctx.store.lock(id)
            try? DeleteVerb.delete(id, ctx, force: true)
            lock?.unlock()
        }
        return code
    }

    static func startLocked(_ id: String, _ ctx: Context) throws(RuntimeError) {
        let lock = try ctx.store.lock(id)
        defer { lock.unlock() }
        try StartVerb.start(id, ctx)
    }
}

/// The foreground loop of `run`: forwards signals, reaps children, and (with a terminal) copies
/// between our stdio and the pty master with our terminal in raw mode. Returns the exit status.
struct TerminalProxy {
    let master: Int32
    let signalFD: Int32
    let pid: Int32

    func run() -> Int32 {
        var saved = termios()
        let rawMode = master >= 0 && isatty(0) != 0 && tcgetattr(0, &saved) == 0
        if rawMode {
            var raw = saved
            cfmakeraw(&raw)
            tcsetattr(0, TCSANOW, &raw)
            resize()
        }
        defer { if rawMode { tcsetattr(0, TCSANOW, &saved) } }
        var stdinOpen = master >= 0
        var masterOpen = master >= 0
        var exitCode: Int32? = nil
        var buf = [UInt8](repeating: 0, count: 32768)
        while exitCode == nil || masterOpen {
            var fds = [pollfd(fd: signalFD, events: Int16(POLLIN), revents: 0)]
            if stdinOpen { fds.append(pollfd(fd: 0, events: Int16(POLLIN), revents: 0)) }
            if masterOpen { fds.append(pollfd(fd: master, events: Int16(POLLIN), revents: 0)) }
            // After exit, drain the pty briefly, then stop.
            let r = poll(&fds, nfds_t(fds.count), exitCode == nil ? -1 : 100)
            if r < 0 { if errno == EINTR { continue }; break }
            if r == 0 { break }
            for p in fds where p.revents != 0 {
                if p.fd == signalFD {
                    let sig = brig_signalfd_read(signalFD)
                    if sig == SIGCHLD { exitCode = reap() ?? exitCode }
                    else if sig == SIGWINCH { resize() }
                    else if sig > 0 { kill(pid, sig) }
                } else if p.fd == 0 {
                    let n = buf.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
                    if n <= 0 { stdinOpen = false; continue }
                    try? Files.writeAll(fd: master, Array(buf[0..<n]))
                } else if p.fd == master {
                    let n = buf.withUnsafeMutableBytes { read(master, $0.baseAddress, $0.count) }
                    if n <= 0 { masterOpen = false; continue }
                    try? Files.writeAll(fd: 1, Array(buf[0..<n]))
                }
            }
        }
        if exitCode == nil { exitCode = reapBlocking() }
        return exitCode ?? 255
    }

    /// Reaps every exited child; returns the container's status if it was among them.
    func reap() -> Int32? {
        var result: Int32? = nil
        while true {
            var status: Int32 = 0
            let r = brig_waitpid(-1, &status, WNOHANG)
            if r <= 0 { break }
            if r == pid { result = Spawn.decode(status).code }
        }
        return result
    }

    func reapBlocking() -> Int32? {
        var status: Int32 = 0
        while true {
            let r = brig_waitpid(-1, &status, 0)
            if r < 0 { return nil }
            if r == pid { return Spawn.decode(status).code }
        }
    }

    func resize() {
        var rows: UInt16 = 0, cols: UInt16 = 0
        if master >= 0, brig_get_winsize(0, &rows, &cols) == 0 { _ = brig_set_winsize(master, rows, cols) }
    }
}
