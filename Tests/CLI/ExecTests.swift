import BrigLinux
import BrigOCI
import FoundationEssentials
import Glibc
import Testing

@Suite("exec", .enabled(if: Harness.isRoot, "needs root"))
struct ExecTests {
    @Test func execJoinsTheContainer() throws {
        let h = try Harness(); defer { h.cleanup() }
        try h.write(Harness.spec(["sleep", "1000"]))
        let id = Harness.uniqueID("exec")
        #expect(h.brig(["run", "-d", "--bundle", h.bundle, id]).code == 0)
        let st = try JSONDecoder().decode(ContainerState.self, from: Data(h.brig(["state", id]).out.utf8))
        // Same namespaces as the container's init, seen from inside.
        let r = h.brig(["exec", id, "sh", "-c", "for n in pid net mnt ipc uts cgroup; do readlink /proc/self/ns/$n; done; exit 3"])
        #expect(r.code == 3)
        var want = ""
        for n in ["pid", "net", "mnt", "ipc", "uts", "cgroup"] { want += NamespaceTests.link("/proc/\(st.pid)/ns/\(n)") + "\n" }
        #expect(r.out == want, "\(r.err)")
        // Flags after the id belong to the command; exec's own flags come before it.
        let u = h.brig(["exec", "-u", "1000:100", "--env", "FOO=bar", "--cwd", "/tmp", id, "sh", "-c", "id -u; id -g; echo $FOO; pwd"])
        #expect(u.out == "1000\n100\nbar\n/tmp\n", "\(u.err)")
        // The process is in the container's cgroup (host view) while it runs.
        let pidFile = h.dir + "/exec.pid"
        #expect(h.brig(["exec", "-d", "--pid-file", pidFile, id, "sleep", "1000"]).code == 0)
        let pid = Int32((try Files.readString(pidFile)))!
        #expect((try Files.readString("/proc/\(pid)/cgroup")).contains("/\(id)\n"))
        // --process replaces the process.
        var p = Process(user: User(uid: 1000, gid: 1000), args: ["sh", "-c", "echo from-process-json $(id -u)"], env: ["PATH=/bin"], cwd: "/")
        p.terminal = false
        try Files.writeAtomically(h.dir + "/process.json", Array(try JSONEncoder().encode(p)))
        #expect(h.brig(["exec", "--process", h.dir + "/process.json", id]).out == "from-process-json 1000\n")
        let missing = h.brig(["exec", id, "no-such-command"])
        #expect(missing.code != 0)
        #expect(missing.err.contains("executable file not found"))
        #expect(h.brig(["delete", "--force", id]).code == 0)
        h.assertClean(id)
        #expect(ProcStat.read(pid: pid) == nil || ProcStat.read(pid: pid)?.state == "Z")
    }

    @Test func execInStoppedContainerFails() throws {
        let h = try Harness(); defer { h.cleanup() }
        try h.write(Harness.spec(["true"]))
        let id = Harness.uniqueID("execstop")
        #expect(h.brig(["run", "--keep", "--bundle", h.bundle, id]).code == 0)
        let r = h.brig(["exec", id, "true"])
        #expect(r.code != 0)
        #expect(r.err.contains("cannot exec in a stopped container"))
        #expect(h.brig(["delete", id]).code == 0)
        h.assertClean(id)
    }
}
