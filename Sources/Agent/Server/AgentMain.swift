import BrigAgentProtocol
import BrigNamespaces
import Glibc

/// `brig-agent`'s command line, kept out of main.swift so that file stays a few lines.
public enum AgentMain {
    public static let usage = """
        usage: brig-agent --listen-unix PATH [--state DIR]
               brig-agent --fd N [--state DIR]
               brig-agent init            (container init stage; run by the agent itself)
        """

    /// `brig-agent init` is the container's first process, exactly as `brig init`.
    public static func dispatchInit(_ argv: [String]) {
        guard argv.count >= 2 && argv[1] == "init" else { return }
        var env: [String: String] = [:]
        if let v = getenv(InitProcess.fdsVariable) { env[InitProcess.fdsVariable] = String(cString: v) }
        InitProcess.main(environment: env)
    }

    /// Serves as the arguments ask; returns the exit code.
    public static func run(_ argv: [String]) -> Int32 {
        var listen: String?, fd: Int32?, state = "/run/brig-agent"
        var i = 1
        while i < argv.count {
            let a = argv[i]
            let value = i + 1 < argv.count ? argv[i + 1] : nil
            switch a {
            case "--listen-unix": listen = value; i += 2
            case "--fd": fd = value.flatMap { Int32($0) }; i += 2
            case "--state": if let value { state = value }; i += 2
            case "-h", "--help": print(usage); return 0
            default: fputs("brig-agent: unknown argument \(a)\n\(usage)\n", stderr); return 2
            }
        }
        guard (listen == nil) != (fd == nil), fd.map({ $0 >= 0 }) ?? true else {
            fputs("brig-agent: give exactly one of --listen-unix PATH or --fd N\n\(usage)\n", stderr)
            return 2
        }
        do {
            let server = try AgentServer(stateRoot: state)
            if let fd { try server.serve(fd: fd) } else if let listen { try server.listen(unixPath: listen) }
            return 0
        } catch {
            fputs("brig-agent: \(error)\n", stderr)
            return 1
        }
    }
}
