import BrigCore
import BrigJSON
import BrigLinux
import BrigOCI
import CBrigShim
import Glibc

enum ExecVerb: Verb {
    static let name = "exec"
    static let usage = "[options] <container-id> <command> [args...]  |  --process process.json <container-id>"
    static let summary = "run a new process inside a running container"
    static let flags = [
        FlagSpec(["process", "p"], value: "FILE", "path to a process.json (runtime-spec process)"),
        FlagSpec(["console-socket"], value: "PATH", "Unix socket that receives the pty master"),
        FlagSpec(["tty", "t"], "allocate a pseudo-TTY"),
        FlagSpec(["detach", "d"], "detach from the process"),
        FlagSpec(["pid-file"], value: "FILE", "file to write the process's pid to"),
        FlagSpec(["env", "e"], value: "KEY=VAL", "set an environment variable (repeatable)"),
        FlagSpec(["cwd"], value: "DIR", "current working directory in the container"),
        FlagSpec(["user", "u"], value: "UID[:GID]", "user id (and group id) to run as"),
        FlagSpec(["additional-gids", "g"], value: "GID", "additional group id (repeatable)"),
        FlagSpec(["cap", "c"], value: "CAP", "add a capability to the bounding, effective, permitted and ambient sets (repeatable)"),
        FlagSpec(["no-new-privs"], "set no_new_privs for the process"),
        FlagSpec(["preserve-fds"], value: "N", "pass N additional file descriptors"),
        FlagSpec(["process-label"], value: "LABEL", "SELinux label (ignored when SELinux is off)"),
        FlagSpec(["apparmor"], value: "PROFILE", "AppArmor profile (ignored when AppArmor is off)"),
        FlagSpec(["ignore-paused"], "allow exec in a paused container"),
        FlagSpec(["cgroup"], value: "[CTRL[,CTRL]:]PATH", "run the process in an existing sub-cgroup of the container's (repeatable)"),
    ]

    static let stopsAtPositional = true

    static func run(_ args: ParsedArgs, _ ctx: Context) throws(RuntimeError) -> Int32 {
        // Flags stop at the container id: what follows is the command, flags and all.
        let id = try requireID(args)
        // runc: exec failing before the process runs exits 255 (the process's own status is 0-255).
        do { return try execute(id, args, ctx) } catch {
            ctx.error(error.description)
            return 255
        }
    }

    static func execute(_ id: String, _ args: ParsedArgs, _ ctx: Context) throws(RuntimeError) -> Int32 {
        let command = Array(args.positionals.dropFirst())
        let container = try ctx.load(id)
        let ignorePaused = args.has("ignore-paused")
        try container.checkExec(ignorePaused: ignorePaused)
        let (_, spec) = try Bundle.load(container.record.bundle)
        let process = try buildProcess(args, command: command, base: spec.process ?? Process(), warn: ctx.warn)
        let detach = args.has("detach")
        if process.terminal == true && detach && args.value("console-socket") == nil {
            throw RuntimeError(.usage, "cannot allocate tty if brig will detach without setting console socket")
        }
        var options = ExecOptions(process: process)
        options.subCgroups = try subCgroups(args.values("cgroup"))
        options.pidFile = args.value("pid-file")
        options.consoleSocket = args.value("console-socket")
        if let n = args.value("preserve-fds") {
            guard let v = Int(n), v >= 0 else { throw RuntimeError(.usage, "--preserve-fds: invalid value \"\(n)\"") }
            options.preserveFDs = v
        }
        if detach {
            _ = try container.exec(options, spec: spec, ignorePaused: ignorePaused)
            return 0
        }
        _ = brig_set_child_subreaper()
        let signals = RunVerb.forwarded + [SIGCHLD, SIGWINCH]
        let sigfd = signals.withUnsafeBufferPointer { brig_signalfd($0.baseAddress, Int32($0.count)) }
        var pair: [Int32] = [-1, -1]
        if process.terminal == true && options.consoleSocket == nil {
            guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
                throw RuntimeError.wrap(SystemError.last("socketpair"))
            }
            options.consoleFD = pair[1]
        }
        let pid = try container.exec(options, spec: spec, ignorePaused: ignorePaused)
        var master: Int32 = -1
        if pair[0] >= 0 {
            close(pair[1])
            master = (try? UnixSocket.receiveFD(pair[0]).fd) ?? -1
            close(pair[0])
        }
        return TerminalProxy(master: master, signalFD: sigfd, pid: pid).run()
    }

    /// runc's rules: --process replaces the container's process; otherwise start from it and
    /// apply the flags.
    static func buildProcess(_ args: ParsedArgs, command: [String], base: Process,
                             warn: (String) -> Void = { _ in }) throws(RuntimeError) -> Process {
        if let path = args.value("process") {
            do {
                // runc 1.1.5 runs such a process as 0:0 (Go's zero value), not as the container's user.
                let data = try withDefaultUser(try Files.read(path), User())
                let p = try JSONDecoding.decode(Process.self, from: data)
                try Validation.validateProcess(p, field: "process")
                return p
            } catch let e as ConfigError { throw RuntimeError(.config, "\(path): \(e)") }
            catch let e as DecodingError { throw RuntimeError(.config, "\(path): \(ConfigLoaderBridge.describe(e))") }
            catch { throw RuntimeError.wrap(error, path) }
        }
        guard !command.isEmpty else { throw RuntimeError(.usage, "exec needs a command or --process") }
        var p = base
        p.args = command
        p.terminal = args.has("tty")
        p.env = (p.env ?? []) + args.values("env")
        if let cwd = args.value("cwd") { p.cwd = cwd }
        if let u = args.value("user") {
            let parts = u.split(separator: ":", maxSplits: 1)
            guard let uid = UInt32(parts[0]), parts.count == 1 || UInt32(parts[1]) != nil else {
                throw RuntimeError(.usage, "--user: expected UID[:GID], got \"\(u)\"")
            }
            p.user.uid = uid
            if parts.count == 2 { p.user.gid = UInt32(parts[1])! }
        }
        let gids = args.values("additional-gids").compactMap(UInt32.init)
        if !gids.isEmpty { p.user.additionalGids = gids }
        if args.has("no-new-privs") { p.noNewPrivileges = true }
        for cap in args.values("cap") {
            let name = cap.uppercased().hasPrefix("CAP_") ? cap.uppercased() : "CAP_" + cap.uppercased()
            // runc warns about a capability it does not know and runs without it.
            guard Tables.capabilityNumber(name) != nil else { warn("--cap: ignoring unknown capability \"\(cap)\""); continue }
            var c = p.capabilities ?? Capabilities()
            c.bounding = (c.bounding ?? []) + [name]; c.effective = (c.effective ?? []) + [name]
            c.permitted = (c.permitted ?? []) + [name]; c.ambient = (c.ambient ?? []) + [name]
            p.capabilities = c
        }
        do { try Validation.validateProcess(p, field: "process") } catch { throw RuntimeError(.config, "\(error)") }
        return p
    }
}

extension ExecVerb {
    /// runc's `--cgroup` values: `PATH` for every hierarchy (once), or `CTRL[,CTRL]:PATH`.
    static func subCgroups(_ values: [String]) throws(RuntimeError) -> [String: String] {
        var paths: [String: String] = [:]
        for v in values {
            guard let colon = v.firstIndex(of: ":") else {
                if paths[""] != nil { throw RuntimeError(.usage, "--cgroup: only one path without a controller is allowed") }
                paths[""] = v
                continue
            }
            for ctrl in v[..<colon].split(separator: ",", omittingEmptySubsequences: false) {
                if ctrl.isEmpty { throw RuntimeError(.usage, "--cgroup: empty controller in \"\(v)\"") }
                paths[String(ctrl)] = String(v[v.index(after: colon)...])
            }
        }
        return paths
    }

    /// A process.json without `user` is accepted (runc): returns the file's JSON with `"user"`
    /// added when the top-level object lacks it.
    static func withDefaultUser(_ data: [UInt8], _ user: User) throws -> [UInt8] {
        struct UserOnly: Decodable { var user: User? }
        guard (try? JSONDecoding.decode(UserOnly.self, from: data))?.user == nil,
              let open = data.firstIndex(where: { $0 != 0x20 && $0 != 0x0a && $0 != 0x0d && $0 != 0x09 }),
              data[open] == UInt8(ascii: "{") else { return data }
        let empty = data[(open + 1)...].first(where: { $0 != 0x20 && $0 != 0x0a && $0 != 0x0d && $0 != 0x09 }) == UInt8(ascii: "}")
        let encoded = try JSONEncoding.encode(user)
        return Array(data[...open]) + Array("\"user\":".utf8) + encoded + (empty ? [] : [UInt8(ascii: ",")]) + Array(data[(open + 1)...])
    }
}

enum ConfigLoaderBridge {
    static func describe(_ e: DecodingError) -> String { "\(e)" }
}
