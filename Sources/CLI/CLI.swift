import BrigCore
import BrigLinux
import BrigMicroVM
import BrigNamespaces
import BrigOCI
import BrigVMM
import Glibc

/// Entry point: global flags, then a verb, as runc's command line has it.
public enum CLI {
    public static let version = "0.1.0"

    static let verbs: [any Verb.Type] = [
        CreateVerb.self, StartVerb.self, StateVerb.self, KillVerb.self, DeleteVerb.self, RunVerb.self,
        ListVerb.self, SpecVerb.self, ExecVerb.self, PsVerb.self, PauseVerb.self, ResumeVerb.self,
        UpdateVerb.self, EventsVerb.self, FeaturesVerb.self, VMVerb.self,
    ]

    /// runc verbs brig does not implement: help text and a clear refusal, never "No help topic".
    static let unsupported: [(name: String, usage: String, summary: String)] = [
        ("checkpoint", "[command options] <container-id>", "checkpoint a running container"),
        ("restore", "[command options] <container-id>", "restore a container from a previous checkpoint"),
    ]

    static func unsupportedHelp(_ v: (name: String, usage: String, summary: String)) -> String {
        "NAME:\n   brig \(v.name) - \(v.summary)\n\nUSAGE:\n   brig \(v.name) \(v.usage)\n\n"
            + "   Not supported: brig has no checkpoint/restore (CRIU) support.\n"
    }

    public static func main(_ argv: [String]) -> Int32 {
        // `brig init` is the container's own first process: no flag parsing, no logging setup.
        if argv.count >= 2 && argv[1] == "init" {
            var env: [String: String] = [:]
            if let v = getenv(InitProcess.fdsVariable) { env[InitProcess.fdsVariable] = String(cString: v) }
            InitProcess.main(environment: env)
        }
        // `brig vm-monitor CONFIG`: the host side of a microvm container or exec (internal).
        if argv.count >= 2 && argv[1] == "vm-monitor" { Monitor.main(Array(argv.dropFirst(2))) }
        // `brig vm boot …` goes straight to the VMM too, as the monitor does: the CLI's set-up
        // (context, flag parsing, the verb table) is code the VMM would otherwise fault in.
        if argv.count >= 3 && argv[1] == "vm" && argv[2] == "boot" {
            signal(SIGPIPE, SIG_IGN)
            return VMCommand.main(Array(argv.dropFirst(2)))
        }
        // A hook or peer that closes its end early must not kill us; children get default
        // dispositions back (Spawn resets every signal), so nothing leaks into containers.
        signal(SIGPIPE, SIG_IGN)
        let ctx = Context()
        do {
            let global = try ArgumentParser.parse(Array(argv.dropFirst()), specs: Context.globalFlags, stopAtPositional: true)
            try ctx.configure(global)
            if global.has("version") { ctx.output(versionText()); return 0 }
            guard let verbName = global.positionals.first else {
                ctx.output(help()); return global.has("help") ? 0 : 1
            }
            let rest = Array(global.positionals.dropFirst())
            if verbName == "help" {
                if let v = rest.first { return try helpFor(v, ctx) }
                ctx.output(help()); return 0
            }
            if let u = unsupported.first(where: { $0.name == verbName }) {
                if rest.contains("--help") || rest.contains("-h") { ctx.output(unsupportedHelp(u)); return 0 }
                throw RuntimeError(.unsupported, "\(verbName) is not supported by brig (no checkpoint/restore support)")
            }
            guard let verb = verbs.first(where: { $0.name == verbName }) else {
                throw RuntimeError(.usage, "No help topic for '\(verbName)'")
            }
            if rest.contains("--help") || rest.contains("-h") { return try helpFor(verbName, ctx) }
            let args = try ArgumentParser.parse(rest, specs: verb.flags, stopAtPositional: verb.stopsAtPositional)
            ctx.debug("\(verbName) \(rest.joined(separator: " "))")
            return try verb.run(args, ctx)
        } catch {
            ctx.error(RuntimeError.wrap(error).description)
            return 1
        }
    }

    static func versionText() -> String {
        "brig version \(version)\nspec: \(Spec.version)\n"
    }

    static func help() -> String {
        var s = "NAME:\n   brig - an OCI container runtime (namespaces and microVM backends)\n\n"
        s += "USAGE:\n   brig [global options] command [command options] [arguments...]\n\nVERSION:\n   \(version)\n\nCOMMANDS:\n"
        for v in verbs { s += "   " + v.name.padding(to: 10) + v.summary + "\n" }
        for u in unsupported { s += "   " + u.name.padding(to: 10) + u.summary + " (not supported)\n" }
        s += "   " + "help".padding(to: 10) + "show help for a command\n\nGLOBAL OPTIONS:\n"
        s += ArgumentParser.help(Context.globalFlags) + "\n"
        return s
    }

    static func helpFor(_ name: String, _ ctx: Context) throws(RuntimeError) -> Int32 {
        if let u = unsupported.first(where: { $0.name == name }) { ctx.output(unsupportedHelp(u)); return 0 }
        guard let v = verbs.first(where: { $0.name == name }) else {
            throw RuntimeError(.usage, "No help topic for '\(name)'")
        }
        var s = "NAME:\n   brig \(v.name) - \(v.summary)\n\nUSAGE:\n   brig \(v.name) \(v.usage)\n"
        if !v.flags.isEmpty { s += "\nOPTIONS:\n" + ArgumentParser.help(v.flags) + "\n" }
        ctx.output(s)
        return 0
    }
}
