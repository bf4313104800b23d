// Checks a decoded Spec against the rules of config.md / config-linux.md that a Linux runtime
// must enforce before creating anything. Errors name the field.

public enum Validation {
    /// Validates a spec for creating a container. `requireProcess` is false for `vm`-only checks.
    public static func validate(_ spec: Spec, requireProcess: Bool = true) throws(ConfigError) {
        if spec.ociVersion.isEmpty { throw ConfigError("ociVersion", "must not be empty") }
        guard let root = spec.root, !root.path.isEmpty else {
            throw ConfigError("root.path", "required on Linux")
        }
        _ = root
        if requireProcess {
            guard let process = spec.process else { throw ConfigError("process", "required for create") }
            try validateProcess(process, field: "process")
        }
        for (i, mount) in (spec.mounts ?? []).enumerated() {
            let f = "mounts[\(i)]"
            if !mount.destination.hasPrefix("/") {
                throw ConfigError("\(f).destination", "must be an absolute path, got \"\(mount.destination)\"")
            }
        }
        try validateHooks(spec.hooks)
        try validateLinux(spec)
    }

    public static func validateProcess(_ process: Process, field f: String) throws(ConfigError) {
        guard let args = process.args, !args.isEmpty, !args[0].isEmpty else {
            throw ConfigError("\(f).args", "must contain at least one entry")
        }
        if !process.cwd.hasPrefix("/") {
            throw ConfigError("\(f).cwd", "must be an absolute path, got \"\(process.cwd)\"")
        }
        for (i, entry) in (process.env ?? []).enumerated() where !entry.contains("=") {
            throw ConfigError("\(f).env[\(i)]", "must have the form KEY=value, got \"\(entry)\"")
        }
        var seen = Set<String>()
        for (i, r) in (process.rlimits ?? []).enumerated() {
            guard Tables.rlimits[r.type] != nil else {
                throw ConfigError("\(f).rlimits[\(i)].type", "unknown rlimit \"\(r.type)\"")
            }
            if !seen.insert(r.type).inserted {
                throw ConfigError("\(f).rlimits[\(i)].type", "duplicate rlimit \"\(r.type)\"")
            }
            if r.soft > r.hard {
                throw ConfigError("\(f).rlimits[\(i)]", "soft limit \(r.soft) exceeds hard limit \(r.hard)")
            }
        }
        if let adj = process.oomScoreAdj, adj < -1000 || adj > 1000 {
            throw ConfigError("\(f).oomScoreAdj", "must be between -1000 and 1000, got \(adj)")
        }
        if let umask = process.user.umask, umask > 0o777 {
            throw ConfigError("\(f).user.umask", "must be at most 0777")
        }
        if let s = process.scheduler { _ = try ProcessExtras.scheduler(s) }
        if let p = process.ioPriority { _ = try ProcessExtras.ioPriority(p) }
        if let a = process.execCPUAffinity {
            _ = try ProcessExtras.cpuMask(a.initial ?? "", field: "\(f).execCPUAffinity.initial")
            _ = try ProcessExtras.cpuMask(a.final ?? "", field: "\(f).execCPUAffinity.final")
        }
    }

    static func validateHooks(_ hooks: Hooks?) throws(ConfigError) {
        guard let hooks else { return }
        let groups: [(String, [Hook]?)] = [
            ("prestart", hooks.prestart), ("createRuntime", hooks.createRuntime),
            ("createContainer", hooks.createContainer), ("startContainer", hooks.startContainer),
            ("poststart", hooks.poststart), ("poststop", hooks.poststop),
        ]
        for (name, list) in groups {
            for (i, hook) in (list ?? []).enumerated() {
                if !hook.path.hasPrefix("/") {
                    throw ConfigError("hooks.\(name)[\(i)].path", "must be an absolute path, got \"\(hook.path)\"")
                }
                if let t = hook.timeout, t <= 0 {
                    throw ConfigError("hooks.\(name)[\(i)].timeout", "must be greater than zero")
                }
            }
        }
    }

    static func validateLinux(_ spec: Spec) throws(ConfigError) {
        let linux = spec.linux ?? Linux()
        var kinds = Set<NamespaceKind>()
        for (i, ns) in (linux.namespaces ?? []).enumerated() {
            guard let kind = NamespaceKind(rawValue: ns.type) else {
                throw ConfigError("linux.namespaces[\(i)].type", "unknown namespace type \"\(ns.type)\"")
            }
            if !kinds.insert(kind).inserted {
                throw ConfigError("linux.namespaces[\(i)].type", "duplicate namespace \"\(ns.type)\"")
            }
            if let path = ns.path, !path.isEmpty, !path.hasPrefix("/") {
                throw ConfigError("linux.namespaces[\(i)].path", "must be an absolute path, got \"\(path)\"")
            }
        }
        let hasUserNS = kinds.contains(.user)
        if !(linux.uidMappings ?? []).isEmpty || !(linux.gidMappings ?? []).isEmpty {
            if !hasUserNS { throw ConfigError("linux.uidMappings", "mappings given without a user namespace") }
        }
        if hasUserNS, let ns = linux.namespaces?.first(where: { $0.type == "user" }), (ns.path ?? "").isEmpty {
            if (linux.uidMappings ?? []).isEmpty { throw ConfigError("linux.uidMappings", "a new user namespace needs uidMappings") }
            if (linux.gidMappings ?? []).isEmpty { throw ConfigError("linux.gidMappings", "a new user namespace needs gidMappings") }
        }
        for (name, list) in [("uidMappings", linux.uidMappings), ("gidMappings", linux.gidMappings)] {
            for (i, m) in (list ?? []).enumerated() where m.size == 0 {
                throw ConfigError("linux.\(name)[\(i)].size", "must be greater than zero")
            }
        }
        if let offsets = linux.timeOffsets, !offsets.isEmpty {
            if !kinds.contains(.time) { throw ConfigError("linux.timeOffsets", "given without a time namespace") }
            for key in offsets.keys where key != "monotonic" && key != "boottime" {
                throw ConfigError("linux.timeOffsets.\(key)", "unknown clock (expected monotonic or boottime)")
            }
        }
        if spec.hostname.map({ !$0.isEmpty }) == true, !kinds.contains(.uts) {
            throw ConfigError("hostname", "setting a hostname needs a private uts namespace")
        }
        if spec.domainname.map({ !$0.isEmpty }) == true, !kinds.contains(.uts) {
            throw ConfigError("domainname", "setting a domainname needs a private uts namespace")
        }
        if let p = linux.rootfsPropagation, !p.isEmpty, !Tables.propagations.contains(p) {
            throw ConfigError("linux.rootfsPropagation", "unknown propagation \"\(p)\"")
        }
        for (i, d) in (linux.devices ?? []).enumerated() {
            let f = "linux.devices[\(i)]"
            guard ["c", "b", "u", "p"].contains(d.type) else {
                throw ConfigError("\(f).type", "unknown device type \"\(d.type)\" (expected c, b, u or p)")
            }
            if !d.path.hasPrefix("/") { throw ConfigError("\(f).path", "must be an absolute path, got \"\(d.path)\"") }
            if d.type != "p", d.major == nil || d.minor == nil {
                throw ConfigError(f, "major and minor are required for a \(d.type) device")
            }
        }
        for key in (linux.sysctl ?? [:]).keys.sorted() {
            try validateSysctl(key, namespaces: kinds)
        }
        if let p = linux.personality { _ = try ProcessExtras.personality(p) }
        if let m = linux.memoryPolicy { _ = try ProcessExtras.memoryPolicy(m) }
        if let devs = linux.netDevices, !devs.isEmpty {
            guard let ns = linux.namespaces?.first(where: { $0.type == "network" }), (ns.path ?? "").isEmpty else {
                throw ConfigError("linux.netDevices", "moving interfaces needs a new network namespace")
            }
            for (name, d) in devs where name.isEmpty || name.contains("/") || (d.name ?? "").contains("/") {
                throw ConfigError("linux.netDevices.\(name)", "invalid interface name")
            }
        }
        if let path = linux.cgroupsPath, path.contains(subsequence: "..") {
            throw ConfigError("linux.cgroupsPath", "must not contain \"..\"")
        }
    }

    /// runc's rule: a sysctl is allowed only when the namespace that owns it is private.
    static func validateSysctl(_ key: String, namespaces: Set<NamespaceKind>) throws(ConfigError) {
        let f = "linux.sysctl.\(key)"
        let ipcKeys: Set<String> = ["kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                                    "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"]
        if ipcKeys.contains(key) || key.hasPrefix("fs.mqueue.") {
            if !namespaces.contains(.ipc) { throw ConfigError(f, "needs a private ipc namespace") }
            return
        }
        if key.hasPrefix("net.") {
            if !namespaces.contains(.network) { throw ConfigError(f, "needs a private network namespace") }
            return
        }
        if key == "kernel.hostname" || key == "kernel.domainname" {
            if !namespaces.contains(.uts) { throw ConfigError(f, "needs a private uts namespace") }
            // runc 1.1 refuses kernel.hostname (it would fight the config's `hostname`); it
            // accepts kernel.domainname.
            if key == "kernel.hostname" { throw ConfigError(f, "not allowed: it conflicts with the \"hostname\" field; set hostname instead") }
            return
        }
        throw ConfigError(f, "not namespaced: brig will not change a host-wide sysctl")
    }
}
