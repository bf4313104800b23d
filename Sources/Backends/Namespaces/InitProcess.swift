import BrigCore
import BrigLinux
import BrigOCI
import CBrigShim
import Glibc

/// `brig init`: the re-exec'd, single-threaded process that becomes the container. It runs in two
/// stages, like runc's nsexec: the first joins/creates namespaces and forks (so that a new pid
/// or time namespace applies to the child); the child sets up the rootfs and process, tells the
/// parent it is ready, and parks until `brig start` connects to the start socket.
public enum InitProcess {
    /// Env var carrying "syncFD,startFD,consoleFD" (consoleFD -1 when there is no terminal).
    public static let fdsVariable = "_BRIG_INIT_FDS"

    public static func main(environment: [String: String]) -> Never {
        let fds = (environment[fdsVariable] ?? "").split(separator: ",").compactMap { Int32($0) }
        guard fds.count == 3 else {
            fputs("brig init: must be started by brig create\n", stderr)
            exit(2)
        }
        let channel = SyncChannel(fd: fds[0])
        do {
            guard case .plan(let plan)? = try channel.receive() else { exit(1) }
            // Decoded while the parent moves us into the container's cgroups; nothing is done before.
            guard case .placed? = try channel.receive() else { exit(1) }
            try firstStage(plan, channel: channel, startFD: fds[1], consoleFD: fds[2])
        } catch {
            try? channel.send(.error("\(error)"))
            exit(1)
        }
    }

    static func firstStage(_ plan: LaunchPlan, channel: SyncChannel, startFD: Int32, consoleFD: Int32) throws -> Never {
        if let mask = plan.process.affinityInitial {
            try sys("sched_setaffinity (process.execCPUAffinity.initial)") { brig_sched_setaffinity(mask, mask.count) }
        }
        // Still the host's root in the host's namespaces: bind sources the container's root may
        // not reach are cloned now, and attached by stage 2.
        let bindSources = RootfsSetup.openHostSources(plan)
        // Join the user namespace first: the others may be owned by it.
        for ns in plan.joinNamespaces where ns.kind == "user" { try join(ns) }
        if plan.newNamespaces.contains("user") {
            try sys("unshare user namespace") { brig_unshare(Int32(BRIG_CLONE_NEWUSER)) }
            try channel.send(.mapUser)
            guard case .mapped? = try channel.receive() else { throw InitError("parent did not map ids") }
        }
        if plan.has(.user) { try becomeRoot(plan) }
        let order = ["ipc", "uts", "network", "pid", "cgroup", "time", "mount"]
        for kind in order { for ns in plan.joinNamespaces where ns.kind == kind { try join(ns) } }
        let flags = plan.newNamespaces.filter { $0 != "user" }.reduce(Int32(0)) { $0 | LaunchPlan.cloneFlag($1) }
        if flags != 0 { try sys("unshare namespaces \(plan.newNamespaces)") { brig_unshare(flags) } }
        if plan.newNamespaces.contains("time") && !plan.timeOffsets.isEmpty {
            let text = plan.timeOffsets.sorted { $0.key < $1.key }
                .map { "\($0.key) \($0.value.secs ?? 0) \($0.value.nanosecs ?? 0)" }.joined(separator: "\n")
            try Files.write("/proc/self/timens_offsets", text + "\n")
        }
        CrashPoint.reached("init.namespaces")
        // The child waits on this pipe until its pid has been reported, so messages stay ordered.
        let (gateR, gateW) = try Files.pipe()
        let child = brig_fork()
        if child < 0 { throw SystemError.last("fork container process") }
        if child == 0 {
            close(gateW)
            var b: UInt8 = 0
            _ = read(gateR, &b, 1)
            close(gateR)
            do {
                try ContainerSetup(plan: plan, channel: channel, startFD: startFD, consoleFD: consoleFD,
                                   bindSources: bindSources).run()
            } catch {
                try? channel.send(.error("\(error)"))
                exit(1)
            }
        }
        CrashPoint.reached("init.forked")
        try channel.send(.childPid(child))
        close(gateW)
        exit(0)
    }

    static func join(_ ns: LaunchPlan.JoinNamespace) throws {
        let fd = try Files.open(ns.path, O_RDONLY)
        defer { close(fd) }
        try sys("join \(ns.kind) namespace \(ns.path)") { brig_setns(fd, LaunchPlan.cloneFlag(ns.kind)) }
    }

    static func becomeRoot(_ plan: LaunchPlan) throws {
        let uidRoot = plan.uidMappings.isEmpty || plan.uidMappings.contains { $0.containerID == 0 }
        let gidRoot = plan.gidMappings.isEmpty || plan.gidMappings.contains { $0.containerID == 0 }
        if gidRoot { try sys("setgid 0 in the user namespace") { brig_setresgid(0) } }
        if uidRoot { try sys("setuid 0 in the user namespace") { brig_setresuid(0) } }
    }
}

struct InitError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}
