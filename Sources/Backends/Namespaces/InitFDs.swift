import BrigCgroups
import BrigCore
import BrigLinux
import BrigOCI
import BrigSeccomp
import CBrigShim
import Glibc

/// The fds `brig init` gets: the sync socket, the start socket (create only) and the console
/// socket, placed in slots right after the preserved fds (3..3+N-1), which pass through as they are.
struct InitFDs {
    let preserve: Int
    let parent: Int32
    let child: Int32
    let console: Int32
    /// Lifted copies of the fds that become the init's 0, 1, 2 (empty: it inherits ours).
    var stdio: [Int32] = []

    /// Moves our own fd well above the preserved range, so placing slots can't clobber it.
    static func lift(_ fd: Int32, preserve: Int) throws -> Int32 {
        let n = try sys("dup fd") { fcntl(fd, F_DUPFD_CLOEXEC, Int32(3 + preserve + 16)) }
        close(fd)
        return n
    }

    static func open(preserve: Int, consoleFD: Int32?, consoleSocket: String?, stdio: [Int32]? = nil,
                     cleanup: inout Cleanup) throws -> InitFDs {
        var lifted: [Int32] = []
        if let stdio {
            guard stdio.count == 3 else { throw RuntimeError(.internalError, "stdio needs exactly three fds") }
            for fd in stdio {
                lifted.append(try lift(try sys("dup stdio fd \(fd)") { dup(fd) }, preserve: preserve))
                cleanup.fds.append(lifted.last!)
            }
        }
        var console: Int32 = -1
        if let fd = consoleFD { console = try lift(try sys("dup console") { dup(fd) }, preserve: preserve) }
        else if let path = consoleSocket {
            do { console = try lift(try UnixSocket.connect(path), preserve: preserve) } catch {
                throw RuntimeError(.system, "--console-socket \(path): \(error)")
            }
        }
        if console >= 0 { cleanup.fds.append(console) }
        let (p, c) = try UnixSocket.pair()
        let parent = try lift(p, preserve: preserve), child = try lift(c, preserve: preserve)
        cleanup.fds += [parent, child]
        return InitFDs(preserve: preserve, parent: parent, child: child, console: console, stdio: lifted)
    }

    /// `brig init` running in the container's cgroup with its plan: the fds it was given (the
    /// parent's end of the sync socket, the console), its pid, and the channel to it.
    struct Launched {
        let fds: InitFDs
        let pid: pid_t
        let channel: SyncChannel
    }

    /// The init spawn sequence `create` and `exec` share: opens the init's fds, spawns it, sends
    /// the plan, and places it in `cgroups` — born there on cgroup v2 (clone3 CLONE_INTO_CGROUP),
    /// else moved in while it decodes the plan (v1 cgroup.procs writes can wait long on the
    /// kernel's lock). `placed` runs once it is in (to record it); then the init may act on the
    /// plan. `step` names the crash points (`create.spawned`, `create.placed`).
    static func launch(_ plan: LaunchPlan, step: String, preserve: Int, consoleFD: Int32?, consoleSocket: String?,
                       stdio: [Int32]?, startFD: Int32?, executable: String?, cgroups: any CgroupManager,
                       cleanup: inout Cleanup, debug: ((String) -> Void)?,
                       placed: (pid_t) throws -> Void) throws -> Launched {
        let fds = try open(preserve: preserve, consoleFD: consoleFD, consoleSocket: consoleSocket, stdio: stdio, cleanup: &cleanup)
        let (pid, born) = try fds.spawn(executable: executable, startFD: startFD, cgroup: cgroups.spawnDirectory,
                                        cleanup: &cleanup, debug: debug)
        CrashPoint.reached(step + ".spawned")
        let channel = SyncChannel(fd: fds.parent)
        try channel.send(.plan(plan))
        if !born { try cgroups.addProcess(pid) }
        try placed(pid)
        CrashPoint.reached(step + ".placed")
        try channel.send(.placed)
        return Launched(fds: fds, pid: pid, channel: channel)
    }

    /// Spawns `brig init` with the fds in their slots, in the cgroup2 directory `cgroup` when the
    /// kernel clones into it (`born`); the child's end of the sync socket is closed here once
    /// the init holds it. Without `executable`, the init runs from a private handle on this
    /// binary that can't be written through (SealedExecutable), closed here once the init has
    /// exec'd it.
    func spawn(executable: String?, startFD: Int32?, cgroup: String?, cleanup: inout Cleanup,
               debug: ((String) -> Void)?) throws -> (pid: pid_t, born: Bool) {
        var path = executable ?? "/proc/self/exe"
        var sealed: Int32 = -1
        if executable == nil {
            if let (fd, _) = SealedExecutable.open() {
                sealed = try InitFDs.lift(fd, preserve: preserve)
                path = SealedExecutable.execPath(sealed)
            } else {
                debug?("no read-only handle on brig could be made (open_tree, memfd): running /proc/self/exe")
            }
        }
        defer { if sealed >= 0 { close(sealed) } }
        let options = spawnOptions(executable: path, startFD: startFD)
        var born: pid_t? = nil
        if let cgroup {
            let fd = Glibc.open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if fd >= 0 {
                defer { close(fd) }
                born = try Spawn.spawn(options, intoCgroup: fd)
            }
            debug?(born != nil ? "init born in its cgroup \(cgroup) (clone3)" : "clone3 into \(cgroup) not possible here: spawning, then moving the init")
        }
        let pid = try born ?? Spawn.spawn(options)
        cleanup.pids.append(pid)
        for fd in [child] + stdio { close(fd) }
        cleanup.fds.removeAll { $0 == child || stdio.contains($0) }
        return (pid, born != nil)
    }

    func spawnOptions(executable: String, startFD: Int32?) -> Spawn.Options {
        let base = Int32(3 + preserve)
        var slots: [(Int32, Int32)] = [(child, base)]
        var next = base + 1
        var start: Int32 = -1, cons: Int32 = -1
        if let startFD { slots.append((startFD, next)); start = next; next += 1 }
        if console >= 0 { slots.append((console, next)); cons = next }
        var o = Spawn.Options(path: executable, args: ["brig", "init"],
                              env: ["\(InitProcess.fdsVariable)=\(base),\(start),\(cons)"] + CrashPoint.initEnvironment())
        o.fds = stdio.enumerated().map { ($0.element, Int32($0.offset)) } + slots + (3..<base).map { ($0, $0) }
        return o
    }
}

/// Undo list for a failed create: kill spawned processes, close fds, remove created cgroups.
struct Cleanup {
    var cgroups: (any CgroupManager)?
    var pids: [pid_t] = []
    var fds: [Int32] = []
    var armed = true

    mutating func disarm() { armed = false }

    func run() {
        guard armed else { return }
        for pid in pids { Glibc.kill(pid, SIGKILL) }
        for pid in pids { var s: Int32 = 0; _ = brig_waitpid(pid, &s, 0) }
        for fd in fds { close(fd) }
        // A killed container process that is not our child may take a moment to leave its cgroup.
        try? cgroups?.destroy()
    }
}

enum ProcessInfoLite {
    static func env(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }
}
