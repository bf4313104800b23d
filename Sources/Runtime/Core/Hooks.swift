import BrigJSON
import BrigLinux
import BrigOCI
import Glibc

/// Runs OCI hooks: the container state JSON on stdin, path/args/env as given, a timeout, and the
/// hook's output in the error when it fails.
public enum HookRunner {
    // runtime.md's order: prestart + createRuntime (runCreateRuntime, called by each backend
    // when the namespaces exist), createContainer and startContainer (in the container's init),
    // poststart (Container.start), poststop (Container.delete).

    /// Where a failing hook is only a warning.
    public enum Point: String, Sendable {
        case poststart, poststop
    }

    /// prestart then createRuntime, stopping at the first failure (the create fails).
    public static func runCreateRuntime(_ hooks: Hooks?, state: ContainerState) throws(RuntimeError) {
        try run(hooks?.prestart ?? [], kind: "prestart", state: state)
        try run(hooks?.createRuntime ?? [], kind: "createRuntime", state: state)
    }

    /// poststart or poststop: every hook runs; failures go to `warn`.
    public static func run(_ point: Point, _ hooks: Hooks?, state: ContainerState, warn: (String) -> Void) {
        let list = (point == .poststart ? hooks?.poststart : hooks?.poststop) ?? []
        for failure in runAll(list, kind: point.rawValue, state: state) { warn(failure.description) }
    }

    /// A hook without `env` gets `defaultEnv` (runc: the environment of the process running it;
    /// ours when nil). `cwd`: the hooks' working directory (nil: ours).
    public static func run(_ hooks: [Hook], kind: String, state: ContainerState, defaultEnv: [String]? = nil,
                           cwd: String? = nil) throws(RuntimeError) {
        guard !hooks.isEmpty else { return }
        let json: [UInt8]
        do { json = try JSONEncoding.encode(state) } catch { throw RuntimeError.wrap(error) }
        for (i, hook) in hooks.enumerated() {
            try run(hook, json: json, label: "\(kind) hook #\(i) (\(hook.path))", defaultEnv: defaultEnv, cwd: cwd)
        }
    }

    /// This process's environment.
    static func environment() -> [String] {
        var out: [String] = []
        var p = environ
        while let e = p.pointee { out.append(String(cString: e)); p += 1 }
        return out
    }

    /// poststart/poststop: a failing hook is a warning and the remaining hooks still run
    /// (config.md). Returns the failures for the caller to log.
    public static func runAll(_ hooks: [Hook], kind: String, state: ContainerState) -> [RuntimeError] {
        guard !hooks.isEmpty else { return [] }
        guard let json = try? JSONEncoding.encode(state) else { return [RuntimeError(.internalError, "encode state")] }
        var failures: [RuntimeError] = []
        for (i, hook) in hooks.enumerated() {
            do { try run(hook, json: json, label: "\(kind) hook #\(i) (\(hook.path))") } catch { failures.append(error) }
        }
        return failures
    }

    static func run(_ hook: Hook, json: [UInt8], label: String, defaultEnv: [String]? = nil, cwd: String? = nil) throws(RuntimeError) {
        do {
            // stdin is a stream socket, so a hook that exits without reading it costs us an
            // EPIPE (MSG_NOSIGNAL), never a SIGPIPE.
            var sv: [Int32] = [-1, -1]
            try sys("socketpair") { socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &sv) }
            let (inR, inW) = (sv[0], sv[1])
            let (outR, outW) = try Files.pipe()
            var o = Spawn.Options(path: hook.path, args: hook.args ?? [hook.path], env: hook.env ?? defaultEnv ?? environment())
            o.fds = [(inR, 0), (outW, 1), (outW, 2)]
            o.stdioOnly = true
            o.cwd = cwd
            let pid: pid_t
            do { pid = try Spawn.spawn(o) } catch {
                [inR, inW, outR, outW].forEach { close($0) }
                throw error
            }
            close(inR); close(outW)
            // The state is small (< socket buffer); a hook that doesn't read stdin must not block us.
            _ = fcntl(inW, F_SETFL, O_NONBLOCK)
            _ = json.withUnsafeBytes { send(inW, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            close(inW)
            _ = fcntl(outR, F_SETFL, O_NONBLOCK)
            var output: [UInt8] = []
            let exit = try Spawn.wait(pid, timeout: Double(hook.timeout ?? 3600)) {
                var buf = [UInt8](repeating: 0, count: 4096)
                while output.count < 65536 {
                    let n = buf.withUnsafeMutableBytes { read(outR, $0.baseAddress, $0.count) }
                    if n <= 0 { break }
                    output += buf[0..<n]
                }
            }
            close(outR)
            var text = String(decoding: output.prefix(4096), as: UTF8.self)
            while text.last?.isWhitespace == true { text.removeLast() }
            guard let exit else {
                throw RuntimeError(.hook, "\(label) timed out after \(hook.timeout ?? 0)s")
            }
            if exit != .exited(0) {
                throw RuntimeError(.hook, "\(label) failed: \(describe(exit))" + (text.isEmpty ? "" : ": \(text)"))
            }
        } catch let e as RuntimeError { throw e } catch {
            throw RuntimeError(.hook, "\(label): \(error)")
        }
    }

    static func describe(_ exit: Spawn.Exit) -> String {
        switch exit {
        case .exited(let c): return "exit status \(c)"
        case .signaled(let s): return "killed by signal \(s)"
        }
    }

}
