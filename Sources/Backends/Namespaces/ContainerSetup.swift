import BrigCore
import BrigJSON
import BrigLinux
import BrigOCI
import CBrigShim
import Glibc

/// The container process before exec: rootfs, hooks, pivot_root, then the process attributes.
struct ContainerSetup {
    let plan: LaunchPlan
    let channel: SyncChannel
    let startFD: Int32
    let consoleFD: Int32
    /// Host-opened bind sources for RootfsSetup (by mount index).
    var bindSources: [Int: Int32] = [:]

    func run() throws -> Never {
        if plan.execMode { try runExec() }
        _ = setsid()
        if plan.newKeyring && brig_join_session_keyring("_ses.\(plan.id)") < 0 && errno != ENOSYS && errno != EACCES {
            throw SystemError.last("join a new session keyring")
        }
        if plan.has(.mount) {
            try RootfsSetup(plan: plan, bindSources: bindSources).prepare()
        }
        // prestart/createRuntime run in the parent now, with our namespaces in place (a round
        // trip only when there are hooks to run).
        if plan.hooksRoundTrip {
            try channel.send(.runtimeHooks)
            guard case .hooksDone(let stateJSON)? = try channel.receive() else { throw InitError("parent aborted") }
            if !plan.createContainerHooks.isEmpty, let state = try? JSONDecoding.decode(ContainerState.self, from: Array(stateJSON.utf8)) {
                // As runc: in the container's root, with the process's environment for hooks without env.
                try sys("chdir \(plan.rootfs)") { chdir(plan.rootfs) }
                do { try HookRunner.run(plan.createContainerHooks, kind: "createContainer", state: state, defaultEnv: plan.process.env) }
                catch { throw InitError(error.description) }
            }
        }
        try RootfsSetup(plan: plan).enterRoot()
        if plan.has(.mount) { try RootfsSetup(plan: plan).finish() }
        if let h = plan.hostname, !h.isEmpty { try sys("sethostname") { brig_sethostname(h, h.utf8.count) } }
        if let d = plan.domainname, !d.isEmpty { try sys("setdomainname") { brig_setdomainname(d, d.utf8.count) } }
        if plan.process.terminal { try setupTerminal() }
        var process = ProcessSetup(plan: plan)
        try process.prepare()
        if process.notifyFD >= 0 {
            // Loaded early (no no_new_privs): the parent hands it to the listener during create.
            try channel.send(.seccompFD, fd: process.notifyFD)
            close(process.notifyFD)
            process.notifyFD = -1
        }
        try channel.send(.ready)
        close(channel.fd)
        // Parked: `brig start` connects, sends the state for startContainer hooks, and we exec.
        let conn = try sys("wait for start") { brig_accept(startFD) }
        close(startFD)
        do {
            var data: [UInt8] = []
            while true {
                let chunk = try UnixSocket.receive(conn, max: 65536)
                if chunk.isEmpty { break }
                data += chunk
            }
            // With no_new_privs the filter loads now; its notify fd goes to `brig start` over the
            // start connection, marked by a leading 0x01 byte. startContainer hooks run after it,
            // as in runc: confined by the container's filter, stdio only.
            try process.seal { fd in try UnixSocket.sendFD(conn, fd, "\u{1}") }
            if !plan.startContainerHooks.isEmpty, let state = try? JSONDecoding.decode(ContainerState.self, from: data) {
                do { try HookRunner.run(plan.startContainerHooks, kind: "startContainer", state: state, defaultEnv: process.env) }
                catch { throw InitError(error.description) }
            }
            try process.execve()
        } catch {
            try? UnixSocket.send(conn, Array("\(error)".utf8))
            exit(127)
        }
    }

    /// `exec`: namespaces are joined (setns into the mount namespace put us at the container's
    /// root); set up the terminal and process, then exec at once. The sync socket is closed by
    /// exec, which tells the parent it worked; a failure is sent as an error first.
    func runExec() throws -> Never {
        _ = setsid()
        try sys("chdir /") { chdir("/") }
        if plan.process.terminal { try setupTerminal(bindConsole: false) }
        var process = ProcessSetup(plan: plan)
        try process.prepare()
        close(startFD)
        if process.notifyFD >= 0 {
            try channel.send(.seccompFD, fd: process.notifyFD)
            close(process.notifyFD)
            process.notifyFD = -1
        }
        try process.exec { fd in try channel.send(.seccompFD, fd: fd) }
    }

    /// Creates the pty inside the container's devpts, hands the master to the console socket,
    /// and makes the slave our controlling terminal and stdio.
    func setupTerminal(bindConsole: Bool = true) throws {
        let master = try Files.open("/dev/ptmx", O_RDWR | O_NOCTTY)
        try sys("unlockpt") { brig_unlockpt(master) }
        var name = [CChar](repeating: 0, count: 64)
        try sys("ptsname") { brig_ptsname(master, &name, name.count) }
        let slavePath = String(cString: name)
        let slave = try sys("open \(slavePath)") { open(slavePath, O_RDWR | O_NOCTTY) }
        // runc: the pty belongs to the process's user (its group stays the devpts gid).
        try sys("chown \(slavePath) to \(plan.process.uid)") { fchown(slave, plan.process.uid, gid_t.max) }
        if let rows = plan.process.consoleRows, let cols = plan.process.consoleCols {
            _ = brig_set_winsize(slave, rows, cols)
        }
        if bindConsole && Files.exists("/dev") {
            if !Files.exists("/dev/console") { close(open("/dev/console", O_CREAT | O_WRONLY | O_CLOEXEC, 0o600)) }
            _ = brig_mount(slavePath, "/dev/console", "", UInt(BRIG_MS_BIND), nil)
        }
        try UnixSocket.sendFD(consoleFD, master, "/dev/ptmx")
        close(master)
        close(consoleFD)
        try sys("set controlling terminal") { brig_tiocsctty(slave) }
        for target: Int32 in 0...2 { try sys("dup2 tty") { dup2(slave, target) } }
        if slave > 2 { close(slave) }
    }
}
