import BrigLinux
import BrigOCI
import BrigSeccomp
@testable import BrigNamespaces
import Testing

/// The binary sync messages (Wire.swift, WirePlan.swift): what the parent sends is what the init
/// reads, field for field, and a damaged message is refused naming the field.
@Suite struct WireTests {
    /// A plan with every field set to something other than its default.
    static func fullPlan() throws -> LaunchPlan {
        var opts = MountOptions.parse(["rbind", "ro", "nosuid", "rslave", "rro", "mode=755", "tmpcopyup"])
        opts.cleared = 0x10
        var p = try LaunchPlan.make(spec: DefaultSpec.make(), id: "c1", bundle: "/b", noPivot: true, preserveFDs: 3,
                                    cgroups: [.init(mountpoint: "/sys/fs/cgroup/memory", options: "memory", version: 1,
                                                    containerDir: "/sys/fs/cgroup/memory/c1")])
        p.readonlyRoot = false
        p.newNamespaces += ["user", "time"]
        p.joinNamespaces = [.init(kind: "network", path: "/proc/1/ns/net")]
        p.uidMappings = [IDMapping(containerID: 0, hostID: 100000, size: 65536)]
        p.gidMappings = [IDMapping(containerID: 0, hostID: 200000, size: 1), IDMapping(containerID: 1, hostID: 3, size: 2)]
        p.timeOffsets = ["monotonic": TimeOffset(secs: -5, nanosecs: 7), "boottime": TimeOffset()]
        p.mounts.append(.init(destination: "/data", source: "/srv/data", type: "bind", kind: .bind, options: opts))
        p.devices.append(.init(path: "/dev/fuse", type: "c", major: 10, minor: 229, mode: 0o600, uid: 1, gid: 2))
        p.maskedPaths = ["/proc/kcore"]
        p.readonlyPaths = ["/proc/sys", "/proc/bus"]
        p.sysctl = ["net.ipv4.ip_forward": "1", "kernel.msgmax": "8192"]
        p.hostname = "h"
        p.domainname = "d.example"
        p.createContainerHooks = [Hook(path: "/bin/hook", args: ["hook", "a"], env: ["X=1"], timeout: 5)]
        p.startContainerHooks = [Hook(path: "/bin/other")]
        p.newKeyring = false
        p.hooksRoundTrip = false
        p.execMode = true
        p.process.additionalGids = [5, 6]
        p.process.umask = 0o27
        p.process.oomScoreAdj = -500
        p.process.terminal = true
        p.process.consoleRows = 24
        p.process.consoleCols = 80
        p.process.personality = 8
        p.process.scheduler = ProcessExtras.SchedAttr(policy: 6, flags: 1, nice: -3, priority: 0, runtime: 10, deadline: 20, period: 30)
        p.process.ioPriority = (2 << 13) | 4
        p.process.memoryPolicy = ProcessExtras.MemPolicy(mode: 2, mask: [3, 1 << 63], maxnode: 129)
        p.process.affinityInitial = [1]
        p.process.affinityFinal = [2, 0]
        p.process.apparmorProfile = "profile"
        p.process.selinuxLabel = "system_u:system_r:container_t:s0"
        p.seccomp = CompiledProfile(
            defaultAction: .errno(38), architectures: [SeccompArchitecture(name: "SCMP_ARCH_X86", token: 0x4000_0003)],
            flags: [.log], rules: [
                SeccompRule(name: "read", syscall: 0, action: .notify,
                            conditions: [SeccompCondition(index: 1, op: .maskedEqual, value: 3, valueTwo: 1)], field: "f[0]"),
                SeccompRule(name: "write", syscall: 1, action: .trace(7), conditions: [], field: "f[1]"),
                SeccompRule(name: "kill", syscall: 62, action: .killProcess, conditions: [], field: "f[2]"),
            ],
            skipped: [SkippedSyscall(name: "nosuch", field: "f[3]")], listenerPath: "/run/agent.sock", listenerMetadata: "meta")
        return p
    }

    @Test func wirePlanRoundTrips() throws {
        let plan = try WireTests.fullPlan()
        guard case .plan(let back) = try SyncMessage(wire: SyncMessage.plan(plan).wire) else { Issue.record("not a plan"); return }
        #expect(back == plan)
        // Every optional of the fixture is set, so a field the codec dropped would show as nil.
        #expect(back.process.capabilities != nil && back.process.rlimits == plan.process.rlimits)
    }

    @Test func defaultPlanRoundTrips() throws {
        let plan = try LaunchPlan.make(spec: DefaultSpec.make(), id: "c", bundle: "/b", noPivot: false, preserveFDs: 0, cgroups: [])
        guard case .plan(let back) = try SyncMessage(wire: SyncMessage.plan(plan).wire) else { Issue.record("not a plan"); return }
        #expect(back == plan)
    }

    @Test(arguments: [SyncMessage.placed, .mapUser, .mapped, .childPid(-7), .childPid(4_000_000), .runtimeHooks,
                      .hooksDone("{\"id\":\"ü\"}"), .ready, .seccompFD, .error("mount /proc: EPERM")])
    func messagesRoundTrip(_ m: SyncMessage) throws {
        #expect("\(try SyncMessage(wire: m.wire))" == "\(m)")
    }

    /// Every prefix of a plan is refused, naming what was being read; nothing after the message.
    @Test func truncatedOrPaddedMessagesAreRefused() throws {
        let bytes = SyncMessage.plan(try WireTests.fullPlan()).wire
        var fields = Set<String>()
        for n in 0..<bytes.count {
            do {
                _ = try SyncMessage(wire: Array(bytes[..<n]))
                Issue.record("a plan cut to \(n) of \(bytes.count) bytes was accepted")
            } catch {
                #expect(error.description.contains("truncated"), "\(error)")
                if let f = error.description.split(separator: ":").dropFirst().first { fields.insert(String(f)) }
            }
        }
        #expect(fields.contains(" plan.mounts.options.flags") && fields.contains(" plan.seccomp.rules.conditions.valueTwo"))
        #expect(throws: InitError.self) { try SyncMessage(wire: bytes + [0]) }
        #expect(throws: InitError.self) { try SyncMessage(wire: [42]) }
    }

    /// A count larger than the rest of the message is refused before anything is allocated.
    @Test func hugeCountsAreRefused() {
        var w = WireWriter()
        w.byte(9)
        w.u64(UInt64.max)
        #expect(throws: InitError.self) { try SyncMessage(wire: w.bytes) }
    }
}
