import BrigLinux
import BrigOCI
import CBrigShim
import Glibc

/// The container process's attributes, applied in runc's order: rlimits and oom score while
/// still privileged, then bounding set, groups, gid, uid, capabilities, umask and cwd; the
/// executable is looked up before parking so `create` reports a missing binary.
struct ProcessSetup {
    let plan: LaunchPlan
    var path = ""
    var env: [String] = []
    /// The seccomp notify fd once the filter is loaded (-1: none).
    var notifyFD: Int32 = -1

    init(plan: LaunchPlan) { self.plan = plan }

    mutating func prepare() throws {
        let p = plan.process
        for r in p.rlimits {
            try sys("setrlimit \(r[0]) to \(r[1])/\(r[2])") {
                brig_setrlimit(Int32(r[0]), UInt64(bitPattern: r[1]), UInt64(bitPattern: r[2]))
            }
        }
        if let adj = p.oomScoreAdj {
            do { try Files.write("/proc/self/oom_score_adj", "\(adj)") } catch {
                throw InitError("process.oomScoreAdj: \(error)")
            }
        }
        env = p.env
        if !env.contains(where: { $0.hasPrefix("HOME=") }) { env.append("HOME=" + home(uid: p.uid)) }
        // Scheduling and memory attributes while still privileged (RT policies need CAP_SYS_NICE).
        if let persona = p.personality { try sys("personality \(persona)") { brig_personality(persona) } }
        if let s = p.scheduler {
            try sys("sched_setattr (process.scheduler)") {
                brig_sched_setattr(s.policy, s.flags, s.nice, s.priority, s.runtime, s.deadline, s.period)
            }
        }
        if let io = p.ioPriority { try sys("ioprio_set (process.ioPriority)") { brig_ioprio_set(io) } }
        if let m = p.memoryPolicy {
            try sys("set_mempolicy (linux.memoryPolicy)") { brig_set_mempolicy(m.mode, m.mask, m.maxnode) }
        }
        if let profile = p.apparmorProfile {
            let attr = Files.exists("/proc/self/attr/apparmor/exec") ? "/proc/self/attr/apparmor/exec" : "/proc/self/attr/exec"
            do { try Files.write(attr, "exec \(profile)") } catch { throw InitError("process.apparmorProfile: \(error)") }
        }
        if let label = p.selinuxLabel {
            do { try Files.write("/proc/self/attr/exec", label) } catch { throw InitError("process.selinuxLabel: \(error)") }
        }
        if let filter = plan.seccomp, !p.noNewPrivileges {
            // Without no_new_privs, loading needs CAP_SYS_ADMIN: do it before dropping it.
            try markFDsCloseOnExec()
            notifyFD = try filter.load() ?? -1
        }
        // runc: chdir while still privileged where that works (a cwd the user can't reach but we
        // can); on EACCES, again as the user below.
        var chdirLater = false
        if chdir(p.cwd) != 0 {
            guard errno == EACCES || errno == EPERM else { throw SystemError.last("chdir to cwd \(p.cwd)") }
            chdirLater = true
        }
        if let caps = p.capabilities {
            try sys("keep capabilities across setuid") { brig_set_keepcaps(1) }
            try caps.dropBounding()
        }
        if !(plan.has(.user) && setgroupsDenied()) {
            try sys("setgroups \(p.additionalGids)") { brig_setgroups(p.additionalGids.count, p.additionalGids) }
        }
        try sys("setgid \(p.gid)") { brig_setresgid(p.gid) }
        try sys("setuid \(p.uid)") { brig_setresuid(p.uid) }
        if let caps = p.capabilities {
            try caps.apply()
            _ = brig_set_keepcaps(0)
        }
        if let mask = p.umask { umask(mode_t(mask)) }
        if chdirLater { try sys("chdir to cwd \(p.cwd)") { chdir(p.cwd) } }
        path = try lookPath(p.args[0])
    }

    func setgroupsDenied() -> Bool {
        ((try? Files.readString("/proc/self/setgroups")) ?? "").hasPrefix("deny")
    }

    /// The home directory of `uid` from the container's /etc/passwd, "/" if none.
    func home(uid: UInt32) -> String {
        guard let text = try? Files.readString("/etc/passwd") else { return "/" }
        for line in text.split(separator: "\n") {
            let f = line.split(separator: ":", omittingEmptySubsequences: false)
            if f.count >= 6, UInt32(f[2]) == uid, !f[5].isEmpty { return String(f[5]) }
        }
        return "/"
    }

    func lookPath(_ name: String) throws -> String {
        func executable(_ p: String) -> Bool {
            var st = stat()
            // Effective ids and capabilities (CAP_DAC_OVERRIDE), as execve will judge it.
            return stat(p, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG && brig_eaccess(p, X_OK) == 0
        }
        if name.contains("/") {
            if executable(name) { return name }
            throw InitError("exec: \"\(name)\": " + (Files.exists(name) ? "permission denied" : "no such file or directory"))
        }
        let pathVar = env.last(where: { $0.hasPrefix("PATH=") }).map { String($0.dropFirst(5)) }
            ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        for dir in pathVar.split(separator: ":", omittingEmptySubsequences: false) {
            let candidate = (dir.isEmpty ? "." : String(dir)) + "/" + name
            if executable(candidate) { return candidate }
        }
        throw InitError("exec: \"\(name)\": executable file not found in $PATH")
    }

    /// The last steps: seal(), then execve().
    mutating func exec(notify: (Int32) throws -> Void = { _ in }) throws -> Never {
        try seal(notify: notify)
        try execve()
    }

    /// no_new_privs, the seccomp filter (if not loaded yet), its notify fd handed to `notify`
    /// for the listener.
    mutating func seal(notify: (Int32) throws -> Void) throws {
        if plan.process.noNewPrivileges { try sys("set no_new_privs") { brig_set_no_new_privs() } }
        if let filter = plan.seccomp, plan.process.noNewPrivileges {
            try markFDsCloseOnExec()
            notifyFD = try filter.load() ?? -1
        }
        if let mask = plan.process.affinityFinal {
            try sys("sched_setaffinity (process.execCPUAffinity.final)") { brig_sched_setaffinity(mask, mask.count) }
        }
        if notifyFD >= 0 {
            try notify(notifyFD)
            close(notifyFD)
            notifyFD = -1
        }
    }

    /// Marks every fd past stdio and the preserved ones close-on-exec (brig init's own, inherited
    /// across its re-exec, among them). Done before a seccomp filter loads, which may refuse
    /// close_range, and once more at execve for fds opened since.
    func markFDsCloseOnExec() throws {
        try sys("mark fds close-on-exec") { brig_mark_cloexec_from(UInt32(3 + plan.preserveFDs)) }
    }

    /// Closes every fd past stdio and the preserved ones, and execs.
    func execve() throws -> Never {
        do { try markFDsCloseOnExec() } catch where plan.seccomp != nil {
            // After a filter that refuses it: the fds were marked before the filter loaded.
        }
        let argv = plan.process.args.map { strdup($0) } + [nil]
        let envp = env.map { strdup($0) } + [nil]
        _ = brig_execve(path, argv, envp)
        throw SystemError.last("exec \(path)")
    }
}
