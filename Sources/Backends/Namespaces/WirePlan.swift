import BrigLinux
import BrigOCI
import BrigSeccomp

// The LaunchPlan in the binary form of Wire.swift: every field, in declaration order; the
// reader names the field it reads (`plan.mounts.source`) in its errors. A field added to the
// plan must be added here too, and to the fixture of `wirePlanRoundTrips` (WireTests).

extension LaunchPlan {
    func write(_ w: inout WireWriter) {
        w.str(id); w.str(bundle); w.str(rootfs); w.bool(readonlyRoot); w.bool(noPivot); w.uint(rootPropagation)
        w.strs(newNamespaces)
        w.list(joinNamespaces) { w, n in w.str(n.kind); w.str(n.path) }
        w.list(uidMappings) { w, m in m.write(&w) }
        w.list(gidMappings) { w, m in m.write(&w) }
        w.dict(timeOffsets) { w, t in w.opt(t.secs) { $0.i64($1) }; w.opt(t.nanosecs) { $0.u32($1) } }
        w.list(mounts) { w, m in
            w.str(m.destination); w.str(m.source); w.str(m.type); w.str(m.kind.rawValue); m.options.write(&w)
        }
        w.list(devices) { w, d in
            w.str(d.path); w.str(d.type); w.i64(d.major); w.i64(d.minor); w.u32(d.mode); w.u32(d.uid); w.u32(d.gid)
        }
        w.strs(maskedPaths); w.strs(readonlyPaths)
        w.dict(sysctl) { $0.str($1) }
        w.opt(hostname) { $0.str($1) }; w.opt(domainname) { $0.str($1) }
        process.write(&w)
        w.list(createContainerHooks) { w, h in h.write(&w) }
        w.list(startContainerHooks) { w, h in h.write(&w) }
        w.list(cgroupHierarchies) { w, h in w.str(h.mountpoint); w.str(h.options); w.int(h.version); w.str(h.containerDir) }
        w.int(preserveFDs); w.bool(newKeyring); w.bool(hooksRoundTrip); w.bool(execMode)
        w.opt(seccomp) { w, s in s.write(&w) }
    }

    init(_ r: inout WireReader) throws(InitError) {
        let id = try r.str("plan.id"), bundle = try r.str("plan.bundle"), rootfs = try r.str("plan.rootfs")
        let readonlyRoot = try r.bool("plan.readonlyRoot"), noPivot = try r.bool("plan.noPivot")
        let rootPropagation = try r.uint("plan.rootPropagation")
        let newNamespaces = try r.strs("plan.newNamespaces")
        let join = try r.list("plan.joinNamespaces") { r throws(InitError) in
            JoinNamespace(kind: try r.str("plan.joinNamespaces.kind"), path: try r.str("plan.joinNamespaces.path"))
        }
        let uidMappings = try r.list("plan.uidMappings") { r throws(InitError) in try IDMapping(&r, "plan.uidMappings") }
        let gidMappings = try r.list("plan.gidMappings") { r throws(InitError) in try IDMapping(&r, "plan.gidMappings") }
        let timeOffsets = try r.dict("plan.timeOffsets") { r throws(InitError) in
            TimeOffset(secs: try r.opt("plan.timeOffsets.secs") { r throws(InitError) in try r.i64("plan.timeOffsets.secs") },
                       nanosecs: try r.opt("plan.timeOffsets.nanosecs") { r throws(InitError) in try r.u32("plan.timeOffsets.nanosecs") })
        }
        let mounts = try r.list("plan.mounts") { r throws(InitError) in
            let destination = try r.str("plan.mounts.destination"), source = try r.str("plan.mounts.source")
            let type = try r.str("plan.mounts.type"), kind = try r.str("plan.mounts.kind")
            guard let k = MountKind(rawValue: kind) else { throw InitError("sync message: plan.mounts.kind: \(kind)") }
            return PlannedMount(destination: destination, source: source, type: type, kind: k, options: try MountOptions(&r))
        }
        let devices = try r.list("plan.devices") { r throws(InitError) in
            PlannedDevice(path: try r.str("plan.devices.path"), type: try r.str("plan.devices.type"),
                          major: try r.i64("plan.devices.major"), minor: try r.i64("plan.devices.minor"),
                          mode: try r.u32("plan.devices.mode"), uid: try r.u32("plan.devices.uid"), gid: try r.u32("plan.devices.gid"))
        }
        let maskedPaths = try r.strs("plan.maskedPaths"), readonlyPaths = try r.strs("plan.readonlyPaths")
        let sysctl = try r.dict("plan.sysctl") { r throws(InitError) in try r.str("plan.sysctl") }
        let hostname = try r.opt("plan.hostname") { r throws(InitError) in try r.str("plan.hostname") }
        let domainname = try r.opt("plan.domainname") { r throws(InitError) in try r.str("plan.domainname") }
        let process = try PlannedProcess(&r)
        let createHooks = try r.list("plan.createContainerHooks") { r throws(InitError) in try Hook(&r, "plan.createContainerHooks") }
        let startHooks = try r.list("plan.startContainerHooks") { r throws(InitError) in try Hook(&r, "plan.startContainerHooks") }
        let cgroups = try r.list("plan.cgroupHierarchies") { r throws(InitError) in
            CgroupHierarchy(mountpoint: try r.str("plan.cgroupHierarchies.mountpoint"), options: try r.str("plan.cgroupHierarchies.options"),
                            version: try r.int("plan.cgroupHierarchies.version"), containerDir: try r.str("plan.cgroupHierarchies.containerDir"))
        }
        self.init(id: id, bundle: bundle, rootfs: rootfs, readonlyRoot: readonlyRoot, noPivot: noPivot,
                  rootPropagation: rootPropagation, newNamespaces: newNamespaces, joinNamespaces: join,
                  uidMappings: uidMappings, gidMappings: gidMappings, timeOffsets: timeOffsets, mounts: mounts,
                  devices: devices, maskedPaths: maskedPaths, readonlyPaths: readonlyPaths, sysctl: sysctl,
                  hostname: hostname, domainname: domainname, process: process, createContainerHooks: createHooks,
                  startContainerHooks: startHooks, cgroupHierarchies: cgroups, preserveFDs: try r.int("plan.preserveFDs"))
        newKeyring = try r.bool("plan.newKeyring")
        hooksRoundTrip = try r.bool("plan.hooksRoundTrip")
        execMode = try r.bool("plan.execMode")
        seccomp = try r.opt("plan.seccomp") { r throws(InitError) in try CompiledProfile(&r) }
    }
}

extension LaunchPlan.PlannedProcess {
    func write(_ w: inout WireWriter) {
        w.strs(args); w.strs(env); w.str(cwd); w.u32(uid); w.u32(gid)
        w.list(additionalGids) { $0.u32($1) }
        w.opt(umask) { $0.u32($1) }
        w.opt(capabilities) { w, c in
            for v in [c.bounding, c.effective, c.permitted, c.inheritable, c.ambient] { w.u64(v) }
        }
        w.list(rlimits) { w, l in w.list(l) { $0.i64($1) } }
        w.bool(noNewPrivileges); w.opt(oomScoreAdj) { $0.int($1) }; w.bool(terminal)
        w.opt(consoleRows) { $0.u64(UInt64($1)) }; w.opt(consoleCols) { $0.u64(UInt64($1)) }
        w.opt(personality) { $0.uint($1) }
        w.opt(scheduler) { w, s in
            w.u32(s.policy); w.u64(s.flags); w.i32(s.nice); w.u32(s.priority); w.u64(s.runtime); w.u64(s.deadline); w.u64(s.period)
        }
        w.opt(ioPriority) { $0.i32($1) }
        w.opt(memoryPolicy) { w, m in w.i32(m.mode); w.u64s(m.mask); w.uint(m.maxnode) }
        w.opt(affinityInitial) { $0.u64s($1) }; w.opt(affinityFinal) { $0.u64s($1) }
        w.opt(apparmorProfile) { $0.str($1) }; w.opt(selinuxLabel) { $0.str($1) }
    }

    init(_ r: inout WireReader) throws(InitError) {
        let f = "plan.process"
        let args = try r.strs(f + ".args"), env = try r.strs(f + ".env"), cwd = try r.str(f + ".cwd")
        let uid = try r.u32(f + ".uid"), gid = try r.u32(f + ".gid")
        let gids = try r.list(f + ".additionalGids") { r throws(InitError) in try r.u32(f + ".additionalGids") }
        let umask = try r.opt(f + ".umask") { r throws(InitError) in try r.u32(f + ".umask") }
        let caps = try r.opt(f + ".capabilities") { r throws(InitError) in
            CapabilitySets(bounding: try r.u64(f + ".capabilities"), effective: try r.u64(f + ".capabilities"),
                           permitted: try r.u64(f + ".capabilities"), inheritable: try r.u64(f + ".capabilities"),
                           ambient: try r.u64(f + ".capabilities"))
        }
        let rlimits = try r.list(f + ".rlimits") { r throws(InitError) in
            try r.list(f + ".rlimits") { r throws(InitError) in try r.i64(f + ".rlimits") }
        }
        let nnp = try r.bool(f + ".noNewPrivileges")
        let oom = try r.opt(f + ".oomScoreAdj") { r throws(InitError) in try r.int(f + ".oomScoreAdj") }
        let terminal = try r.bool(f + ".terminal")
        let rows = try r.opt(f + ".consoleRows") { r throws(InitError) in try r.u16(f + ".consoleRows") }
        let cols = try r.opt(f + ".consoleCols") { r throws(InitError) in try r.u16(f + ".consoleCols") }
        self.init(args: args, env: env, cwd: cwd, uid: uid, gid: gid, additionalGids: gids, umask: umask,
                  capabilities: caps, rlimits: rlimits, noNewPrivileges: nnp, oomScoreAdj: oom, terminal: terminal,
                  consoleRows: rows, consoleCols: cols)
        personality = try r.opt(f + ".personality") { r throws(InitError) in try r.uint(f + ".personality") }
        scheduler = try r.opt(f + ".scheduler") { r throws(InitError) in
            ProcessExtras.SchedAttr(policy: try r.u32(f + ".scheduler.policy"), flags: try r.u64(f + ".scheduler.flags"),
                                    nice: try r.i32(f + ".scheduler.nice"), priority: try r.u32(f + ".scheduler.priority"),
                                    runtime: try r.u64(f + ".scheduler.runtime"), deadline: try r.u64(f + ".scheduler.deadline"),
                                    period: try r.u64(f + ".scheduler.period"))
        }
        ioPriority = try r.opt(f + ".ioPriority") { r throws(InitError) in try r.i32(f + ".ioPriority") }
        memoryPolicy = try r.opt(f + ".memoryPolicy") { r throws(InitError) in
            ProcessExtras.MemPolicy(mode: try r.i32(f + ".memoryPolicy.mode"), mask: try r.u64s(f + ".memoryPolicy.mask"),
                                    maxnode: try r.uint(f + ".memoryPolicy.maxnode"))
        }
        affinityInitial = try r.opt(f + ".affinityInitial") { r throws(InitError) in try r.u64s(f + ".affinityInitial") }
        affinityFinal = try r.opt(f + ".affinityFinal") { r throws(InitError) in try r.u64s(f + ".affinityFinal") }
        apparmorProfile = try r.opt(f + ".apparmorProfile") { r throws(InitError) in try r.str(f + ".apparmorProfile") }
        selinuxLabel = try r.opt(f + ".selinuxLabel") { r throws(InitError) in try r.str(f + ".selinuxLabel") }
    }
}

extension IDMapping {
    func write(_ w: inout WireWriter) { w.u32(containerID); w.u32(hostID); w.u32(size) }
    init(_ r: inout WireReader, _ f: String) throws(InitError) {
        self.init(containerID: try r.u32(f + ".containerID"), hostID: try r.u32(f + ".hostID"), size: try r.u32(f + ".size"))
    }
}

extension Hook {
    func write(_ w: inout WireWriter) {
        w.str(path); w.opt(args) { $0.strs($1) }; w.opt(env) { $0.strs($1) }; w.opt(timeout) { $0.int($1) }
    }
    init(_ r: inout WireReader, _ f: String) throws(InitError) {
        self.init(path: try r.str(f + ".path"),
                  args: try r.opt(f + ".args") { r throws(InitError) in try r.strs(f + ".args") },
                  env: try r.opt(f + ".env") { r throws(InitError) in try r.strs(f + ".env") },
                  timeout: try r.opt(f + ".timeout") { r throws(InitError) in try r.int(f + ".timeout") })
    }
}

extension MountOptions {
    func write(_ w: inout WireWriter) {
        w.uint(flags); w.uint(cleared); w.list(propagation) { $0.uint($1) }; w.strs(data)
        w.bool(bind); w.bool(recursive); w.bool(tmpcopyup); w.u64(recursiveSet); w.u64(recursiveClear)
    }
    init(_ r: inout WireReader) throws(InitError) {
        let f = "plan.mounts.options"
        self.init()
        flags = try r.uint(f + ".flags"); cleared = try r.uint(f + ".cleared")
        propagation = try r.list(f + ".propagation") { r throws(InitError) in try r.uint(f + ".propagation") }
        data = try r.strs(f + ".data")
        bind = try r.bool(f + ".bind"); recursive = try r.bool(f + ".recursive"); tmpcopyup = try r.bool(f + ".tmpcopyup")
        recursiveSet = try r.u64(f + ".recursiveSet"); recursiveClear = try r.u64(f + ".recursiveClear")
    }
}

extension CompiledProfile {
    func write(_ w: inout WireWriter) {
        Self.write(defaultAction, &w)
        w.list(architectures) { w, a in w.str(a.name); w.u32(a.token) }
        w.u32(flags.rawValue)
        w.list(rules) { w, rule in
            w.str(rule.name); w.i32(rule.syscall); Self.write(rule.action, &w)
            w.list(rule.conditions) { w, c in w.u32(c.index); w.u32(c.op.rawValue); w.u64(c.value); w.u64(c.valueTwo) }
            w.str(rule.field)
        }
        w.list(skipped) { w, s in w.str(s.name); w.str(s.field) }
        w.opt(listenerPath) { $0.str($1) }; w.opt(listenerMetadata) { $0.str($1) }
    }

    init(_ r: inout WireReader) throws(InitError) {
        let f = "plan.seccomp"
        let defaultAction = try Self.action(&r, f + ".defaultAction")
        let archs = try r.list(f + ".architectures") { r throws(InitError) in
            SeccompArchitecture(name: try r.str(f + ".architectures.name"), token: try r.u32(f + ".architectures.token"))
        }
        let flags = SeccompFilterFlags(rawValue: try r.u32(f + ".flags"))
        let rules = try r.list(f + ".rules") { r throws(InitError) in
            let name = try r.str(f + ".rules.name"), syscall = try r.i32(f + ".rules.syscall")
            let action = try Self.action(&r, f + ".rules.action")
            let conditions = try r.list(f + ".rules.conditions") { r throws(InitError) in
                let index = try r.u32(f + ".rules.conditions.index"), op = try r.u32(f + ".rules.conditions.op")
                guard let o = SeccompOperator(rawValue: op) else { throw InitError("sync message: \(f).rules.conditions.op: \(op)") }
                return SeccompCondition(index: index, op: o, value: try r.u64(f + ".rules.conditions.value"),
                                        valueTwo: try r.u64(f + ".rules.conditions.valueTwo"))
            }
            return SeccompRule(name: name, syscall: syscall, action: action, conditions: conditions, field: try r.str(f + ".rules.field"))
        }
        let skipped = try r.list(f + ".skipped") { r throws(InitError) in
            SkippedSyscall(name: try r.str(f + ".skipped.name"), field: try r.str(f + ".skipped.field"))
        }
        self.init(defaultAction: defaultAction, architectures: archs, flags: flags, rules: rules, skipped: skipped,
                  listenerPath: try r.opt(f + ".listenerPath") { r throws(InitError) in try r.str(f + ".listenerPath") },
                  listenerMetadata: try r.opt(f + ".listenerMetadata") { r throws(InitError) in try r.str(f + ".listenerMetadata") })
    }

    /// An action as a tag and its 16-bit data (errno, trace).
    static func write(_ a: SeccompAction, _ w: inout WireWriter) {
        switch a {
        case .allow: w.byte(0)
        case .errno(let e): w.byte(1); w.u64(UInt64(e))
        case .killThread: w.byte(2)
        case .killProcess: w.byte(3)
        case .trap: w.byte(4)
        case .trace(let e): w.byte(5); w.u64(UInt64(e))
        case .log: w.byte(6)
        case .notify: w.byte(7)
        }
    }

    static func action(_ r: inout WireReader, _ f: String) throws(InitError) -> SeccompAction {
        switch try r.byte(f) {
        case 0: return .allow
        case 1: return .errno(try r.u16(f))
        case 2: return .killThread
        case 3: return .killProcess
        case 4: return .trap
        case 5: return .trace(try r.u16(f))
        case 6: return .log
        case 7: return .notify
        case let t: throw InitError("sync message: \(f): unknown action \(t)")
        }
    }
}
