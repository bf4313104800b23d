import BrigLinux
import BrigSeccomp
import BrigOCI
import CBrigShim

/// Everything the container's init needs, computed by the parent from the spec (pure), sent to
/// `brig init` in the binary form of WirePlan.swift (not Codable: no JSON in the init). The init
/// process interprets no spec itself.
public struct LaunchPlan: Sendable, Equatable {
    public struct JoinNamespace: Sendable, Equatable {
        public var kind: String
        public var path: String
        public init(kind: String, path: String) { self.kind = kind; self.path = path }
    }

    public enum MountKind: String, Sendable { case bind, cgroup, regular }

    public struct PlannedMount: Sendable, Equatable {
        public var destination: String
        public var source: String
        public var type: String
        public var kind: MountKind
        public var options: MountOptions
    }

    public struct PlannedDevice: Sendable, Equatable {
        public var path: String
        public var type: String
        public var major: Int64
        public var minor: Int64
        public var mode: UInt32
        public var uid: UInt32
        public var gid: UInt32
    }

    /// A host cgroup hierarchy, for `cgroup` mounts inside the container.
    public struct CgroupHierarchy: Sendable, Equatable {
        public var mountpoint: String   // host mountpoint, e.g. /sys/fs/cgroup/memory
        public var options: String      // controllers (v1), empty for cgroup2
        public var version: Int         // 1 or 2
        public var containerDir: String // the container's directory on the host
    }

    public struct PlannedProcess: Sendable, Equatable {
        public var args: [String]
        public var env: [String]
        public var cwd: String
        public var uid: UInt32
        public var gid: UInt32
        public var additionalGids: [UInt32]
        public var umask: UInt32?
        public var capabilities: CapabilitySets?
        public var rlimits: [[Int64]]   // [resource, soft, hard]
        public var noNewPrivileges: Bool
        public var oomScoreAdj: Int?
        public var terminal: Bool
        public var consoleRows: UInt16?
        public var consoleCols: UInt16?
        public var personality: UInt? = nil
        public var scheduler: ProcessExtras.SchedAttr? = nil
        public var ioPriority: Int32? = nil
        public var memoryPolicy: ProcessExtras.MemPolicy? = nil
        /// exec only: affinity before joining the container, and just before execve.
        public var affinityInitial: [UInt64]? = nil
        public var affinityFinal: [UInt64]? = nil
        /// LSM labels, set only when the host has that LSM enabled.
        public var apparmorProfile: String? = nil
        public var selinuxLabel: String? = nil
    }

    public var id: String
    public var bundle: String
    public var rootfs: String
    public var readonlyRoot: Bool
    public var noPivot: Bool
    public var rootPropagation: UInt
    public var newNamespaces: [String]
    public var joinNamespaces: [JoinNamespace]
    public var uidMappings: [IDMapping]
    public var gidMappings: [IDMapping]
    public var timeOffsets: [String: TimeOffset]
    public var mounts: [PlannedMount]
    public var devices: [PlannedDevice]
    public var maskedPaths: [String]
    public var readonlyPaths: [String]
    public var sysctl: [String: String]
    public var hostname: String?
    public var domainname: String?
    public var process: PlannedProcess
    public var createContainerHooks: [Hook]
    public var startContainerHooks: [Hook]
    public var cgroupHierarchies: [CgroupHierarchy]
    public var preserveFDs: Int
    /// Join a new session keyring named after the container (off with --no-new-keyring).
    public var newKeyring: Bool = true
    /// Whether the container stops after its mounts for the parent (prestart/createRuntime hooks,
    /// or the caller's runtimeHooks) and for createContainer hooks; false skips that round trip.
    public var hooksRoundTrip: Bool = true
    /// `exec`: join a running container's namespaces and run at once (no rootfs, no parking).
    public var execMode: Bool = false
    /// The validated seccomp filter, loaded last (with no_new_privs: just before execve;
    /// without: before dropping capabilities, as runc does since loading then needs CAP_SYS_ADMIN).
    public var seccomp: CompiledProfile? = nil

    public func has(_ kind: NamespaceKind) -> Bool {
        newNamespaces.contains(kind.rawValue) || joinNamespaces.contains { $0.kind == kind.rawValue }
    }

    /// The bind mounts whose sources the init opens on the host side, before it enters the
    /// container's user namespace, where its root may not reach them (runc >= 1.2, crun): all
    /// binds of a container with a user namespace and a new mount namespace, except sources in
    /// the rootfs (the container's root reaches those, and earlier mounts may cover them).
    public var hostOpenedBinds: [Int] {
        guard has(.user), newNamespaces.contains("mount"), !execMode else { return [] }
        return mounts.indices.filter { i in
            let m = mounts[i]
            return m.kind == .bind && m.source != rootfs && !m.source.hasPrefix(rootfs == "/" ? "/" : rootfs + "/")
        }
    }

    /// The propagation a host-opened bind gets, as a bind made inside the container's mount
    /// namespace would: a slave (or private) copy under the default rslave (rprivate) root; under
    /// rshared the clone stays a peer of its source. 0: leave it as cloned.
    public var detachedPropagation: UInt64 {
        let kinds = [UInt(BRIG_MS_SLAVE), UInt(BRIG_MS_PRIVATE)]
        return UInt64(kinds.first { rootPropagation & $0 != 0 } ?? 0)
    }

    /// Where a refused sysfs or mqueue mount is bound from instead (crun's rootless fallback),
    /// or nil. In a user namespace the kernel refuses a new sysfs without a network namespace of
    /// the container's own, and a new mqueue without an ipc namespace: the container then sees
    /// the host's, so the host's instance (`/sys`; the host's mqueue mount, from `hostMounts`)
    /// bound read-only-as-asked shows it the same thing. sysfs only when asked read-only (crun).
    public func hostInstance(for m: PlannedMount, hostMounts: [MountInfo]) -> String? {
        guard has(.user), m.kind == .regular else { return nil }
        switch m.type {
        case "sysfs" where !newNamespaces.contains("network") && m.options.readonly:
            return "/sys"
        case "mqueue" where !newNamespaces.contains("ipc"):
            let mqueues = hostMounts.filter { $0.fsType == "mqueue" && $0.root == "/" }.map(\.mountPoint)
            return mqueues.first { $0 == "/dev/mqueue" } ?? mqueues.first
        default:
            return nil
        }
    }

    public static func cloneFlag(_ kind: String) -> Int32 {
        switch kind {
        case "pid": return Int32(BRIG_CLONE_NEWPID)
        case "network": return Int32(BRIG_CLONE_NEWNET)
        case "mount": return Int32(BRIG_CLONE_NEWNS)
        case "ipc": return Int32(BRIG_CLONE_NEWIPC)
        case "uts": return Int32(BRIG_CLONE_NEWUTS)
        case "user": return Int32(BRIG_CLONE_NEWUSER)
        case "cgroup": return Int32(BRIG_CLONE_NEWCGROUP)
        case "time": return Int32(BRIG_CLONE_NEWTIME)
        default: return 0
        }
    }
}

extension LaunchPlan {
    /// runc's default devices, created in every container with a private /dev.
    public static let defaultDevices: [PlannedDevice] = [
        ("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7),
        ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0),
    ].map { PlannedDevice(path: $0.0, type: "c", major: $0.1, minor: $0.2, mode: 0o666, uid: 0, gid: 0) }

    /// Converts a validated spec into a plan. Pure: everything it needs comes in as arguments.
    public static func make(spec: Spec, id: String, bundle: String, noPivot: Bool, preserveFDs: Int,
                            cgroups: [CgroupHierarchy], extraEnv: [String] = []) throws(ConfigError) -> LaunchPlan {
        guard let process = spec.process, let root = spec.root else { throw ConfigError("process", "required") }
        let linux = spec.linux ?? Linux()
        let rootfs = absolute(root.path, base: bundle)

        var newNS: [String] = [], join: [JoinNamespace] = []
        for ns in linux.namespaces ?? [] {
            if let path = ns.path, !path.isEmpty { join.append(JoinNamespace(kind: ns.type, path: path)) }
            else { newNS.append(ns.type) }
        }

        // A new user namespace with mappings: the process's ids must be mapped, or setuid fails
        // with a bare EINVAL deep in the init (runc: "cannot set uid to unmapped user").
        if newNS.contains("user") {
            func mapped(_ id: UInt32, _ m: [IDMapping]) -> Bool {
                m.contains { id >= $0.containerID && UInt64(id) < UInt64($0.containerID) + UInt64($0.size) }
            }
            let user = process.user
            if let m = linux.uidMappings, !m.isEmpty, !mapped(user.uid, m) {
                throw ConfigError("process.user.uid", "\(user.uid) is not mapped in the container's user namespace (linux.uidMappings)")
            }
            if let m = linux.gidMappings, !m.isEmpty, !mapped(user.gid, m) {
                throw ConfigError("process.user.gid", "\(user.gid) is not mapped in the container's user namespace (linux.gidMappings)")
            }
        }

        var mounts: [PlannedMount] = []
        for m in spec.mounts ?? [] {
            let opts = MountOptions.parse(m.options ?? [])
            let type = m.type ?? (opts.bind ? "bind" : "")
            let kind: MountKind = (opts.bind || type == "bind") ? .bind : (type == "cgroup" || type == "cgroup2") ? .cgroup : .regular
            var source = m.source ?? ""
            if kind == .bind { source = absolute(source, base: bundle) }
            mounts.append(PlannedMount(destination: clean(m.destination), source: source, type: type, kind: kind, options: opts))
        }

        var devices = LaunchPlan.defaultDevices
        for d in linux.devices ?? [] {
            let dev = PlannedDevice(path: clean(d.path), type: d.type, major: d.major ?? 0, minor: d.minor ?? 0,
                                    mode: d.fileMode ?? 0o666, uid: d.uid ?? 0, gid: d.gid ?? 0)
            if let i = devices.firstIndex(where: { $0.path == dev.path }) { devices[i] = dev } else { devices.append(dev) }
        }

        var caps: CapabilitySets? = nil
        if let c = process.capabilities {
            func mask(_ names: [String]?) -> UInt64 {
                (names ?? []).reduce(0) { acc, n in Tables.capabilityNumber(n).map { acc | (1 << UInt64($0)) } ?? acc }
            }
            caps = CapabilitySets(bounding: mask(c.bounding), effective: mask(c.effective), permitted: mask(c.permitted),
                                  inheritable: mask(c.inheritable), ambient: mask(c.ambient))
        }

        var env = process.env ?? []
        env.append(contentsOf: extraEnv)
        let propagation = linux.rootfsPropagation.flatMap { MountOptions.propagationFlags[$0] }
            ?? UInt(BRIG_MS_SLAVE | BRIG_MS_REC)
        let planned = PlannedProcess(
            args: process.args ?? [], env: env, cwd: process.cwd, uid: process.user.uid, gid: process.user.gid,
            additionalGids: process.user.additionalGids ?? [], umask: process.user.umask, capabilities: caps,
            rlimits: (process.rlimits ?? []).map { [Int64(Tables.rlimits[$0.type] ?? 0), Int64(bitPattern: $0.soft), Int64(bitPattern: $0.hard)] },
            noNewPrivileges: process.noNewPrivileges ?? false, oomScoreAdj: process.oomScoreAdj,
            terminal: process.terminal ?? false,
            consoleRows: process.consoleSize.map { UInt16(clamping: $0.height) },
            consoleCols: process.consoleSize.map { UInt16(clamping: $0.width) })

        var planned_ = planned
        if let p = linux.personality { planned_.personality = try ProcessExtras.personality(p) }
        if let s = process.scheduler { planned_.scheduler = try ProcessExtras.scheduler(s) }
        if let p = process.ioPriority { planned_.ioPriority = try ProcessExtras.ioPriority(p) }
        if let m = linux.memoryPolicy { planned_.memoryPolicy = try ProcessExtras.memoryPolicy(m) }
        if let a = process.execCPUAffinity {
            if let i = a.initial { planned_.affinityInitial = try ProcessExtras.cpuMask(i, field: "process.execCPUAffinity.initial") }
            if let f = a.final { planned_.affinityFinal = try ProcessExtras.cpuMask(f, field: "process.execCPUAffinity.final") }
        }
        let hooks = spec.hooks ?? Hooks()
        var seccomp: CompiledProfile? = nil
        if let s = linux.seccomp { seccomp = try SeccompProfile.compile(s) }
        var plan = LaunchPlan(
            id: id, bundle: bundle, rootfs: rootfs, readonlyRoot: root.readonly ?? false, noPivot: noPivot,
            rootPropagation: propagation, newNamespaces: newNS, joinNamespaces: join,
            uidMappings: linux.uidMappings ?? [], gidMappings: linux.gidMappings ?? [],
            timeOffsets: linux.timeOffsets ?? [:], mounts: mounts, devices: devices,
            maskedPaths: linux.maskedPaths ?? [], readonlyPaths: linux.readonlyPaths ?? [],
            sysctl: linux.sysctl ?? [:], hostname: spec.hostname, domainname: spec.domainname,
            process: planned_, createContainerHooks: hooks.createContainer ?? [],
            startContainerHooks: hooks.startContainer ?? [], cgroupHierarchies: cgroups, preserveFDs: preserveFDs)
        plan.seccomp = seccomp
        return plan
    }

    /// The plan for `exec`: the container's namespaces joined through its pid, its cgroup,
    /// and `process` (already merged with the container's defaults by the caller).
    public static func forExec(spec: Spec, process: Process, id: String, bundle: String, containerPid: Int32,
                               preserveFDs: Int) throws(ConfigError) -> LaunchPlan {
        var s = spec
        s.process = process
        s.mounts = []
        s.hooks = nil
        s.hostname = nil
        s.domainname = nil
        s.linux?.sysctl = nil
        s.linux?.devices = nil
        var plan = try make(spec: s, id: id, bundle: bundle, noPivot: false, preserveFDs: preserveFDs, cgroups: [])
        let file = ["pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts", "user": "user",
                    "cgroup": "cgroup", "time": "time"]
        plan.joinNamespaces = (spec.linux?.namespaces ?? []).compactMap { ns in
            file[ns.type].map { JoinNamespace(kind: ns.type, path: "/proc/\(containerPid)/ns/\($0)") }
        }
        plan.newNamespaces = []
        plan.devices = []
        plan.maskedPaths = []
        plan.readonlyPaths = []
        plan.newKeyring = false
        plan.execMode = true
        return plan
    }

    static func absolute(_ path: String, base: String) -> String {
        clean(path.hasPrefix("/") ? path : base + "/" + path)
    }

    /// Lexically cleans a path: collapses `//` and `.`, resolves `..` without going above `/`.
    public static func clean(_ path: String) -> String {
        var parts: [Substring] = []
        for p in path.split(separator: "/") {
            if p == "." { continue }
            if p == ".." { if !parts.isEmpty { parts.removeLast() }; continue }
            parts.append(p)
        }
        let joined = parts.joined(separator: "/")
        return path.hasPrefix("/") ? "/" + joined : (joined.isEmpty ? "." : joined)
    }
}
