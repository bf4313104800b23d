import BrigCore
import BrigJSON
import BrigLinux
import BrigMicroVM
import BrigNamespaces
import BrigOCI
import Glibc

/// Global options (before the verb) and the services every verb uses: the state store, the
/// backend, and logging in runc's text or JSON format.
public final class Context {
    public var root = "/run/brig"
    public var logPath: String?
    public var logJSON = false
    public var debugEnabled = false
    public var systemdCgroup = false
    /// `--rootless true|false`; nil is auto.
    var rootlessFlag: Bool?
    /// Rootless mode: `--rootless`, or (auto) not root or in a user namespace. Derived when asked
    /// (create, and the default --root), so other calls do not read /proc/self/uid_map.
    public var rootless: Bool { rootlessFlag ?? (geteuid() != 0 || Proc.inUserNamespace) }
    /// `--backend` (or BRIG_BACKEND): the backend for containers whose config does not choose.
    public var defaultBackend: String?
    var logFD: Int32 = -1

    public static let globalFlags: [FlagSpec] = [
        FlagSpec(["root"], value: "DIR", "root directory for storage of container state (default: \"/run/brig\")"),
        FlagSpec(["log"], value: "FILE", "set the log file to write brig logs to (default is stderr)"),
        FlagSpec(["log-format"], value: "text|json", "set the log format (default: \"text\")"),
        FlagSpec(["debug"], "enable debug logging"),
        FlagSpec(["systemd-cgroup"], "enable systemd cgroup support (cgroupsPath as slice:prefix:name)"),
        FlagSpec(["backend"], value: "namespaces|microvm", "backend for containers whose config does not choose one (default: namespaces, or BRIG_BACKEND)"),
        FlagSpec(["rootless"], value: "true|false|auto", "ignore cgroup permission errors (default: auto)"),
        FlagSpec(["criu"], value: "PATH", "accepted for compatibility; checkpointing is not supported"),
        FlagSpec(["help", "h"], "show help"),
        FlagSpec(["version", "v"], "print the version"),
    ]

    public init() {}

    func configure(_ p: ParsedArgs) throws(RuntimeError) {
        if let r = p.value("root") { root = r }
        logPath = p.value("log")
        if let f = p.value("log-format") {
            guard f == "text" || f == "json" else { throw RuntimeError(.usage, "unknown log-format \"\(f)\"") }
            logJSON = f == "json"
        }
        debugEnabled = p.has("debug")
        systemdCgroup = p.has("systemd-cgroup")
        switch p.value("rootless") ?? "auto" {
        case "true": rootlessFlag = true
        case "false": rootlessFlag = false
        case "auto": rootlessFlag = nil
        case let v: throw RuntimeError(.usage, "--rootless: invalid value \"\(v)\" (true, false or auto)")
        }
        // As runc: a rootless runtime keeps its state under $XDG_RUNTIME_DIR by default.
        if p.value("root") == nil, let xdg = getenv("XDG_RUNTIME_DIR").map({ String(cString: $0) }), !xdg.isEmpty, rootless {
            root = xdg + "/brig"
        }
        defaultBackend = p.value("backend") ?? getenv("BRIG_BACKEND").map { String(cString: $0) }
        if let path = logPath {
            logFD = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        }
    }

    public var store: StateStore { StateStore(root: root) }

    /// The containers under `--root`, run by this process's backends.
    public var containers: Containers {
        Containers(store: store, warn: { [weak self] in self?.warn($0) }, backends: { [self] in backend($0) })
    }

    /// The backend a new container with `spec` gets (see BackendSelection).
    func selectBackend(_ spec: Spec) throws(RuntimeError) -> BackendKind {
        try BackendSelection.select(spec: spec, flag: defaultBackend)
    }

    func backend(_ kind: BackendKind) -> any Backend {
        // nil without --debug: the backends' debug lines are then not even formatted.
        let debug: ((String) -> Void)? = debugEnabled ? { [weak self] in self?.debug($0) } : nil
        switch kind {
        case .namespaces: return NamespacesBackend(debug: debug, warn: { [weak self] in self?.warn($0) })
        case .microvm: return MicroVMBackend.fromEnvironment(debug: debug, warn: { [weak self] in self?.warn($0) })
        }
    }

    // MARK: logging

    func write(level: String, _ message: String) {
        let line: String
        if logJSON {
            struct Entry: Encodable { var level: String; var msg: String; var time: String }
            // logrus's JSON: keys sorted (level, msg, time), slashes as is.
            let data = (try? JSONEncoding.encode(Entry(level: level, msg: message, time: Timestamp.now()), format: .sortedKeys)) ?? []
            line = String(decoding: data, as: UTF8.self) + "\n"
        } else {
            line = "time=\"\(Timestamp.now())\" level=\(level) msg=\(Context.logQuoted(message))\n"
        }
        let fd = logFD >= 0 ? logFD : 2
        _ = line.withCString { Glibc.write(fd, $0, strlen($0)) }
    }

    /// Go's %q as logrus's text format quotes a message: `"` and `\` escaped, control characters
    /// as `\n`, `\t`, `\r` or `\xHH`, everything else (`'`, non-ASCII) as is.
    static func logQuoted(_ message: String) -> String {
        var out = "\""
        for u in message.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case _ where u.value < 0x20 || u.value == 0x7f:
                out += "\\x" + (u.value < 0x10 ? "0" : "") + String(u.value, radix: 16)
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }

    public func debug(_ message: String) { if debugEnabled { write(level: "debug", message) } }
    public func warn(_ message: String) { write(level: "warning", message) }

    /// Reports a fatal error as runc does: to the log (JSON or text) and to stderr.
    public func error(_ message: String) {
        if logFD >= 0 { write(level: "error", message) }
        let line = (logJSON && logFD < 0) ? nil : message + "\n"
        if let line { _ = line.withCString { Glibc.write(2, $0, strlen($0)) } } else { write(level: "error", message) }
    }

    // MARK: helpers shared by verbs

    /// Loads a container and derives its status (Containers.load).
    func load(_ id: String) throws(RuntimeError) -> Container { try containers.load(id) }

    func output(_ text: String) {
        _ = text.withCString { Glibc.write(1, $0, strlen($0)) }
    }

    func json<T: Encodable>(_ value: T, pretty: Bool = true) throws(RuntimeError) -> String {
        let format: JSONWriter.Format = pretty ? [.pretty, .sortedKeys] : .sortedKeys
        do { return String(decoding: try JSONEncoding.encode(value, format: format), as: UTF8.self) } catch { throw RuntimeError.wrap(error) }
    }
}

/// A one-line JSON object with its keys in the given order (runc's, which scripts match
/// textually: `list --format json`, `events`); nil values are left out.
func orderedJSON(_ pairs: [(String, (any Encodable)?)]) throws(RuntimeError) -> String {
    var parts: [String] = []
    for (key, value) in pairs {
        guard let value else { continue }
        do {
            parts.append("\"\(key)\":" + String(decoding: try JSONEncoding.encode(value, format: .sortedKeys), as: UTF8.self))
        } catch { throw RuntimeError.wrap(error) }
    }
    return "{" + parts.joined(separator: ",") + "}"
}

/// A verb: flags, help, and a body returning the exit status.
public protocol Verb {
    static var name: String { get }
    static var usage: String { get }
    static var summary: String { get }
    static var flags: [FlagSpec] { get }
    static var stopsAtPositional: Bool { get }
    static func run(_ args: ParsedArgs, _ ctx: Context) throws(RuntimeError) -> Int32
}

extension Verb {
    /// Whether flag parsing stops at the first positional (exec: the command follows the id).
    static var stopsAtPositional: Bool { false }

    static func requireID(_ args: ParsedArgs) throws(RuntimeError) -> String {
        guard let id = args.positionals.first, !id.isEmpty else {
            throw RuntimeError(.usage, "\(name) requires a container id (usage: brig \(name) \(usage))")
        }
        return id
    }
}
