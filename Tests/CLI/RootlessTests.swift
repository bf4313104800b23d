import BrigCgroups
import BrigLinux
import BrigOCI
import Glibc
import Testing

/// brig run by an unprivileged user with `brig spec --rootless`'s bundle, as rootless podman
/// calls it: a user namespace mapping the user to root, no cgroup unless one is delegated.
/// The tests run brig as `nobody` (65534) through setpriv; on this host no cgroup is delegated,
/// so the container runs without one; with limits it is refused, naming what is missing. The
/// delegated-subtree case runs in the VM test host (conformance, layout "rootless").
@Suite("rootless", .enabled(if: Harness.isRoot && Files.exists("/usr/bin/setpriv"), "needs root (to become nobody) and setpriv"))
struct RootlessTests {
    static let uid: UInt32 = 65534

    /// `brig ARGS` as nobody, with its state under XDG_RUNTIME_DIR (runc's rootless default).
    func asUser(_ h: Harness, _ args: [String]) -> Harness.Result {
        let xdg = h.dir + "/xdg"
        return Harness.exec(["/usr/bin/env", "-i", "PATH=/usr/bin:/bin", "XDG_RUNTIME_DIR=\(xdg)", "/usr/bin/setpriv",
                             "--reuid=\(Self.uid)", "--regid=\(Self.uid)", "--clear-groups", "--inh-caps=-all", "--",
                             Harness.binary] + args, cwd: h.bundle)
    }

    func prepare(_ h: Harness, _ edit: (inout Spec) -> Void = { _ in }) throws {
        var s = DefaultSpec.make(rootless: true, uid: Self.uid, gid: Self.uid)
        s.process?.terminal = false
        s.process?.args = ["sh", "-c", "echo in; id -u"]
        edit(&s)
        try h.write(s)
        try Files.mkdirAll(h.dir + "/xdg")
        #expect(Harness.exec(["/bin/chown", "-R", "\(Self.uid):\(Self.uid)", h.dir]).code == 0)
    }

    @Test func runsWithoutACgroupWhenNoneIsDelegated() throws {
        let layout = try CgroupLayout.current()
        let own = layout.unifiedMount.map { $0 + layout.unifiedOwnPath } ?? layout.v1.first.map { $0.mountPoint + $0.ownPath } ?? "/"
        try #require(access(own, W_OK) != 0 || layout.mode != .unified, "the caller's cgroup is writable here")
        let h = try Harness(); defer { h.cleanup() }
        try prepare(h)
        let id = Harness.uniqueID("rl")
        let r = asUser(h, ["--debug", "run", id])
        #expect(r.code == 0, "\(r.err)")
        #expect(r.out == "in\n0\n", "\(r.out)")
        #expect(r.err.contains("rootless: running without a cgroup of its own"), "\(r.err)")
        #expect(!Files.exists(h.dir + "/xdg/brig/" + id), "state left behind")
        h.assertClean(id)
    }

    @Test func limitsWithoutADelegatedCgroupAreRefused() throws {
        let h = try Harness(); defer { h.cleanup() }
        try prepare(h) { s in
            var r = Resources(); r.pids = Resources.Pids(limit: 20)
            s.linux?.resources = r
        }
        let id = Harness.uniqueID("rl")
        let r = asUser(h, ["run", id])
        #expect(r.code == 1)
        #expect(r.err.contains("rootless: limits or a cgroupsPath need a cgroup subtree delegated to the user"), "\(r.err)")
        #expect(r.err.contains("Permission denied"), "\(r.err)")
        #expect(!Files.exists(h.dir + "/xdg/brig/" + id), "state left behind")
        h.assertClean(id)
    }

    @Test func rootlessFlagValues() throws {
        let h = try Harness(); defer { h.cleanup() }
        let r = h.brig(["list"], global: ["--rootless", "maybe"])
        #expect(r.code != 0 && r.err.contains("--rootless: invalid value \"maybe\""), "\(r.err)")
        #expect(h.brig(["list"], global: ["--rootless", "false"]).code == 0)
    }
}
