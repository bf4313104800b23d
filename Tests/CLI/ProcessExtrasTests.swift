import BrigLinux
import BrigOCI
import FoundationEssentials
import Glibc
import Testing

/// personality, scheduler, ioPriority, memoryPolicy, execCPUAffinity, intelRdt, netDevices,
/// read back from inside the container.
@Suite("process and linux extras", .enabled(if: Harness.isRoot, "needs root"))
struct ProcessExtrasTests {
    @Test func personalitySchedulerIoprioMempolicy() throws {
        let h = try Harness(); defer { h.cleanup() }
        var s = Harness.spec(["sh", "-c", """
            uname -m; cat /proc/self/personality
            awk '{print "nice=" $19, "policy=" $41}' /proc/self/stat
            ionice -p $$
            grep -c bind:0 /proc/self/numa_maps
            """])
        s.linux?.personality = Personality(domain: "LINUX32")
        s.process?.scheduler = Scheduler(policy: "SCHED_BATCH", nice: 5)
        s.process?.ioPriority = IOPriority(class: "IOPRIO_CLASS_BE", priority: 6)
        s.linux?.memoryPolicy = MemoryPolicy(mode: "MPOL_BIND", nodes: "0")
        let r = try h.run(s, id: Harness.uniqueID("extras"))
        let lines = r.out.split(separator: "\n").map(String.init)
        #expect(lines.count == 5, "\(r.out) \(r.err)")
        guard lines.count == 5 else { return }
        #expect(lines[0] == "i686")
        #expect(lines[1] == "00000008")
        #expect(lines[2] == "nice=5 policy=3")
        #expect(lines[3].contains("best-effort") && lines[3].contains("6"), "\(lines[3])")
        #expect(Int(lines[4]) ?? 0 > 0)
    }

    @Test func badExtrasNameTheField() throws {
        let h = try Harness(); defer { h.cleanup() }
        let id = Harness.uniqueID("badextra")
        for (mutate, field) in [
            ({ (s: inout Spec) in s.linux?.personality = Personality(domain: "BSD") }, "linux.personality.domain"),
            ({ (s: inout Spec) in s.process?.scheduler = Scheduler(policy: "SCHED_FIFO", priority: 0) }, "process.scheduler.priority"),
            ({ (s: inout Spec) in s.process?.ioPriority = IOPriority(class: "IOPRIO_CLASS_X") }, "process.ioPriority.class"),
            ({ (s: inout Spec) in s.linux?.memoryPolicy = MemoryPolicy(mode: "MPOL_BIND") }, "linux.memoryPolicy.nodes"),
            ({ (s: inout Spec) in s.linux?.intelRdt = IntelRdt(closID: "x") }, "linux.intelRdt"),
            ({ (s: inout Spec) in s.linux?.netDevices = ["nonexistent0": NetDevice()] }, "linux.netDevices.nonexistent0"),
        ] as [((inout Spec) -> Void, String)] {
            var s = Harness.spec(["true"])
            mutate(&s)
            try h.write(s)
            let r = h.brig(["create", "--bundle", h.bundle, id])
            #expect(r.code != 0)
            #expect(r.err.contains(field), "\(field): \(r.err)")
            h.assertClean(id)
        }
    }

    @Test func execCPUAffinity() throws {
        let h = try Harness(); defer { h.cleanup() }
        try h.write(Harness.spec(["sleep", "1000"]))
        let id = Harness.uniqueID("affinity")
        #expect(h.brig(["run", "-d", "--bundle", h.bundle, id]).code == 0)
        var p = Process(args: ["sh", "-c", "taskset -p $$"], env: ["PATH=/bin"], cwd: "/")
        p.execCPUAffinity = ExecCPUAffinity(initial: "0-1", final: "1")
        try Files.writeAtomically(h.dir + "/p.json", Array(try JSONEncoder().encode(p)))
        let r = h.brig(["exec", "--process", h.dir + "/p.json", id])
        #expect(r.out.hasSuffix(": 2\n"), "\(r.out) \(r.err)")
        _ = h.brig(["delete", "--force", id])
    }

    @Test func netDeviceMovesIntoTheContainer() throws {
        let h = try Harness(); defer { h.cleanup() }
        let host = "bv\(getpid() % 100000)a", peer = "bv\(getpid() % 100000)b"
        let add = Harness.exec(["/sbin/ip", "link", "add", host, "type", "veth", "peer", "name", peer])
        #expect(add.code == 0, "\(add.err)")
        defer { _ = Harness.exec(["/sbin/ip", "link", "del", peer]) }
        var s = Harness.spec(["sh", "-c", "ip -o link show | grep -c ceth0"])
        s.linux?.netDevices = [host: NetDevice(name: "ceth0")]
        let id = Harness.uniqueID("netdev")
        let r = try h.run(s, id: id)
        #expect(r.out == "1\n", "\(r.out) \(r.err)")
        // Gone from the host (moved, then destroyed with the container's namespace).
        #expect(Harness.exec(["/sbin/ip", "link", "show", host]).code != 0)
        h.assertClean(id)
    }
}
