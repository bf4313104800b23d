import BrigCgroups
import BrigCore
import BrigLinux
import BrigNamespaces
import BrigOCI
import CBrigShim
import FoundationEssentials
import Glibc
import Testing

/// Nothing lost, nothing left: brig SIGKILLed at every step (CrashPoint) and at random times,
/// corrupt state, two brig binaries at once, a full or read-only state directory, churn and
/// concurrent lifecycles on overlapping ids. After each, `delete --force` must leave no state
/// directory, cgroup, process, mount or sealed-binary copy.
@Suite("reliability", .enabled(if: Harness.isRoot, "needs root"))
struct ReliabilityTests {
    /// `brig --root <root> ARGS` with stdio on /dev/null (a parked container inherits it) and
    /// `env` added; returns brig's pid and how it ended.
    static func call(_ h: Harness, _ args: [String], env: [String] = [], binary: String = Harness.binary) -> (pid: pid_t, exit: Spawn.Exit?) {
        let null = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { close(null) }
        var o = Spawn.Options(path: binary, args: [binary, "--root", h.root] + args,
                              env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"] + env)
        o.fds = [(null, 0), (null, 1), (null, 2)]
        guard let pid = try? Spawn.spawn(o) else { return (-1, nil) }
        return (pid, try? Spawn.wait(pid, timeout: 60))
    }

    static func envInt(_ name: String, _ fallback: Int) -> Int {
        getenv(name).flatMap { Int(String(cString: $0)) } ?? fallback
    }

    static func crashEnv(_ point: String) -> [String] {
        ["\(CrashPoint.modeVariable)=crash", "\(CrashPoint.pointVariable)=\(point)"]
    }

    /// Processes still carrying the crash-test marker of the brig with pid `brig` (the inits it
    /// spawned, until they exec the container's program).
    static func marked(by brig: pid_t) -> [String] {
        let needle = Array("\(CrashPoint.pidVariable)=\(brig)\0".utf8)
        var out: [String] = []
        for name in (try? Files.list("/proc")) ?? [] {
            guard let pid = Int32(name), pid != getpid(), let env = try? Files.read("/proc/\(name)/environ") else { continue }
            if env.count >= needle.count, (0...(env.count - needle.count)).contains(where: { env[$0..<$0 + needle.count].elementsEqual(needle) }) {
                let st = ProcStat.read(pid: pid)
                if st?.state != "Z" { out.append("\(pid) (\(st?.state ?? "?"))") }
            }
        }
        return out
    }

    /// Mounts that mention this test's directory, and sealed-binary copies an older brig keeps
    /// in /run/brig/.exe for this binary (brig now makes none).
    static func hostTraces(_ h: Harness) -> [String] {
        let mounts = ((try? Files.readString("/proc/self/mountinfo")) ?? "").split(separator: "\n")
            .filter { $0.contains(h.dir) && !$0.contains(" \(h.dir)/small ") }  // the tests' own tmpfs roots
        var st = stat()
        stat(Harness.binary, &st)
        let copies = ((try? Files.list("/run/brig/.exe")) ?? []).filter { $0.hasPrefix("brig-\(st.st_dev)-\(st.st_ino)-") }
        return mounts.map(String.init) + copies
    }

    /// Everything gone for `id`, plus no marked process from `brig`.
    static func assertNothingLeft(_ h: Harness, _ id: String, brig: pid_t? = nil, _ what: String,
                                  sourceLocation: SourceLocation = #_sourceLocation) {
        h.assertClean(id, sourceLocation: sourceLocation)
        let entries = ((try? Files.list(h.root)) ?? []).filter { $0.contains(id) }
        #expect(entries.isEmpty, "\(what): state root still holds \(entries)", sourceLocation: sourceLocation)
        #expect(hostTraces(h).isEmpty, "\(what): left \(hostTraces(h))", sourceLocation: sourceLocation)
        if let brig {
            var left = marked(by: brig)
            for _ in 0..<200 where !left.isEmpty { usleep(10_000); left = marked(by: brig) }
            #expect(left.isEmpty, "\(what): processes of the killed brig left: \(left)", sourceLocation: sourceLocation)
        }
    }

    static func listed(_ h: Harness, _ id: String) -> String? {
        let r = h.brig(["list", "--format", "json"])
        guard r.code == 0, let states = try? JSONDecoder().decode([ContainerState].self, from: Data(r.out.utf8)) else { return nil }
        return states.first { $0.id == id }?.status.rawValue
    }

    // MARK: SIGKILL at each step

    @Test(arguments: CrashPoint.points)
    func killedAtPointLeavesNothingAfterDelete(_ point: String) throws {
        let h = try Harness(); defer { h.cleanup() }
        try h.write(Harness.spec(["sleep", "1000"]))
        let id = Harness.uniqueID("crash")
        let before = Self.hostTraces(h)
        var killed: (pid: pid_t, exit: Spawn.Exit?)
        switch point.split(separator: ".").first! {
        case "create", "init":
            killed = Self.call(h, ["create", "--bundle", h.bundle, id], env: Self.crashEnv(point))
            // Killed before it finished: the leftover is listed as stopped (never skipped);
            // killed after saving, the container is complete and parked.
            // (Killed while staging, the directory is not visible under its id yet.)
            let status = Self.listed(h, id)
            let expected: String? = point == "create.staged" ? nil : point == "create.saved" ? "created" : "stopped"
            #expect(status == expected, "\(point): list shows \(status ?? "nothing")")
        case "start":
            #expect(h.brig(["create", "--bundle", h.bundle, id]).code == 0)
            killed = Self.call(h, ["start", id], env: Self.crashEnv(point))
            // The init had its connection: it starts, and never reads as `created` again.
            var status = Self.listed(h, id)
            for _ in 0..<100 where status != "running" { usleep(10_000); status = Self.listed(h, id) }
            #expect(status == "running", "\(point): \(status ?? "nothing")")
        case "exec":
            #expect(h.brig(["run", "-d", "--bundle", h.bundle, id]).code == 0)
            killed = Self.call(h, ["exec", id, "sleep", "1000"], env: Self.crashEnv(point))
            #expect(Self.listed(h, id) == "running")
        default:  // delete
            #expect(h.brig(["run", "-d", "--bundle", h.bundle, id]).code == 0)
            killed = Self.call(h, ["delete", "--force", id], env: Self.crashEnv(point))
            #expect(Self.listed(h, id) == "stopped", "a half-deleted container lists as stopped")
        }
        #expect(killed.exit == .signaled(SIGKILL), "\(point): brig was not killed there: \(String(describing: killed.exit))")
        let d = h.brig(["delete", "--force", id])
        #expect(d.code == 0, "\(point): delete --force: \(d.err)")
        #expect(before.isEmpty)
        Self.assertNothingLeft(h, id, brig: killed.pid, point)
    }

    /// Not a test mode: the hook needs both variables.
    @Test func crashPointNeedsTestMode() throws {
        let h = try Harness(); defer { h.cleanup() }
        try h.write(Harness.spec(["true"]))
        let id = Harness.uniqueID("nocrash")
        let r = Self.call(h, ["create", "--bundle", h.bundle, id], env: ["\(CrashPoint.pointVariable)=create.recorded"])
        #expect(r.exit == .exited(0))
        #expect(h.brig(["delete", "--force", id]).code == 0)
        h.assertClean(id)
    }

    /// Timing luck on top of the named points: SIGKILL `create` / `run -d` after 0-60 ms.
    @Test func killedAtRandomTimesLeavesNothingAfterDelete() throws {
        let h = try Harness(); defer { h.cleanup() }
        try h.write(Harness.spec(["sleep", "1000"]))
        let rounds = Self.envInt("BRIG_CRASH_ROUNDS", 20)
        for round in 0..<rounds {
            let id = Harness.uniqueID("rand")
            let null = open("/dev/null", O_RDWR | O_CLOEXEC)
            var o = Spawn.Options(path: Harness.binary, args: [Harness.binary, "--root", h.root] +
                                  (round % 2 == 0 ? ["create"] : ["run", "-d"]) + ["--bundle", h.bundle, id], env: [])
            o.fds = [(null, 0), (null, 1), (null, 2)]
            let pid = try Spawn.spawn(o)
            close(null)
            usleep(UInt32.random(in: 0...60_000))
            kill(pid, SIGKILL)
            _ = try Spawn.wait(pid)
            let d = h.brig(["delete", "--force", id])
            #expect(d.code == 0, "round \(round): \(d.err)")
            Self.assertNothingLeft(h, id, "round \(round)")
        }
    }

    // MARK: corrupt state

    @Test func corruptStateIsReportedListedAndForceDeleted() throws {
        let h = try Harness(); defer { h.cleanup() }
        try h.write(Harness.spec(["sleep", "1000"]))
        let id = Harness.uniqueID("corrupt")
        #expect(h.brig(["run", "-d", "--bundle", h.bundle, id]).code == 0)
        try Files.write(h.root + "/" + id + "/state.json", "{\"id\": \"\(id)\", \"pid\": 12", flags: O_WRONLY | O_TRUNC)

        let s = h.brig(["state", id])
        #expect(s.code != 0)
        #expect(s.err.contains("state file") && s.err.contains("is corrupt") && s.err.contains("delete --force \(id)"), "\(s.err)")
        let l = h.brig(["list"])
        #expect(l.code == 0)
        #expect(l.out.contains(id), "list skipped the corrupt container: \(l.out)")
        #expect(l.err.contains(id) && l.err.contains("corrupt"), "list gave no warning: \(l.err)")
        let d = h.brig(["delete", id])
        #expect(d.code != 0 && d.err.contains("delete --force"), "\(d.err)")
        let f = h.brig(["delete", "--force", id])
        #expect(f.code == 0, "\(f.err)")
        #expect(f.err.contains("corrupt") && f.err.contains("removing"), "no warning: \(f.err)")
        // The default-path cgroup was found: its process killed, its directories removed.
        Self.assertNothingLeft(h, id, "corrupt state")
    }

    // MARK: two brig binaries at once

    /// Two different brig binaries (as during an upgrade, or two engines) creating and exec'ing
    /// at the same time: each uses its own private sealed handle, so neither breaks the other.
    @Test func twoBrigBinariesSideBySide() throws {
        let h = try Harness(); defer { h.cleanup() }
        try h.write(Harness.spec(["sleep", "1000"]))
        var binaries: [String] = []
        for (n, extra) in ["old", "new"].enumerated() {
            let path = h.dir + "/brig-\(extra)"
            var bytes = try Files.read(Harness.binary)
            bytes += Array(repeating: UInt8(n), count: 4096 * (n + 1))  // a different binary (size, content)
            let fd = try Files.open(path, O_WRONLY | O_CREAT | O_TRUNC, mode: 0o755)
            try Files.writeAll(fd: fd, bytes)
            close(fd)
            binaries.append(path)
        }
        let rounds = 8
        final class Box: @unchecked Sendable { var failures: [String] = []; var ids: [String] = []; let m = PThreadMutexBox() }
        let box = Box()
        let threads = binaries.map { bin in
            Threads.spawn {
                for i in 0..<rounds {
                    let id = Harness.uniqueID("side")
                    let steps: [[String]] = [["run", "-d", "--bundle", h.bundle, id], ["exec", id, "true"], ["delete", "--force", id]]
                    for args in steps {
                        let r = Harness.exec([bin, "--root", h.root] + args)
                        if r.code != 0 { box.m.with { box.failures.append("\(bin) round \(i) \(args[0]): \(r.err)") } }
                    }
                    box.m.with { box.ids.append(id) }
                }
            }
        }
        for t in threads { pthread_join(t, nil) }
        #expect(box.failures.isEmpty, "\(box.failures)")
        #expect(box.ids.count == 2 * rounds)
        for id in box.ids { h.assertClean(id) }
        let copies = ((try? Files.list("/run/brig/.exe")) ?? []).filter { name in
            binaries.contains { var st = stat(); stat($0, &st); return name.hasPrefix("brig-\(st.st_dev)-\(st.st_ino)-") }
        }
        #expect(copies.isEmpty, "a shared sealed copy was made: \(copies)")
    }

    // MARK: a full or read-only state directory

    func withTmpfsRoot(_ h: Harness, options: String, _ body: (String) throws -> Void) throws {
        let root = h.dir + "/small"
        try Files.mkdirAll(root)
        guard brig_mount("tmpfs", root, "tmpfs", 0, options) == 0 else { throw SystemError.last("mount tmpfs \(options)") }
        defer { _ = brig_umount2(root, Int32(BRIG_MNT_DETACH)) }
        try body(root)
    }

    @Test func fullStateDirectoryFailsCleanly() throws {
        let h = try Harness(); defer { h.cleanup() }
        try h.write(Harness.spec(["sleep", "1000"]))
        // One page: the first state.json fits, its atomic replacement (a second file) does not,
        // so create fails after cgroups and the init exist. Then: no inode for the directory.
        for options in ["size=4k,mode=711", "nr_inodes=1,mode=711"] {
            try withTmpfsRoot(h, options: options) { root in
                let id = Harness.uniqueID("enospc")
                let r = Harness.exec([Harness.binary, "--root", root, "create", "--bundle", h.bundle, id])
                #expect(r.code == 1, "\(options): \(r.code) \(r.err)")
                #expect(r.err.contains("No space left on device") && r.err.contains(root), "\(options): \(r.err)")
                #expect(((try? Files.list(root)) ?? ["?"]).isEmpty, "\(options): partial state left: \((try? Files.list(root)) ?? [])")
                Self.assertNothingLeft(h, id, options)
            }
        }
    }

    @Test func readOnlyStateDirectoryFailsCleanly() throws {
        let h = try Harness(); defer { h.cleanup() }
        try h.write(Harness.spec(["sleep", "1000"]))
        try withTmpfsRoot(h, options: "size=1m,mode=711") { root in
            // A container made while writable, then the root goes read-only.
            let id = Harness.uniqueID("rostate")
            #expect(Harness.exec([Harness.binary, "--root", root, "run", "-d", "--bundle", h.bundle, id]).code == 0)
            #expect(brig_mount(nil, root, nil, UInt(BRIG_MS_REMOUNT | BRIG_MS_RDONLY), nil) == 0)
            let id2 = Harness.uniqueID("rostate")
            let c = Harness.exec([Harness.binary, "--root", root, "create", "--bundle", h.bundle, id2])
            #expect(c.code == 1 && c.err.contains("Read-only file system"), "\(c.err)")
            Self.assertNothingLeft(h, id2, "create on a read-only root")
            let d = Harness.exec([Harness.binary, "--root", root, "delete", "--force", id])
            #expect(d.code == 1 && d.err.contains("Read-only file system") && d.err.contains(root + "/" + id), "\(d.err)")
            // Writable again: the same delete finishes the job.
            #expect(brig_mount(nil, root, nil, UInt(BRIG_MS_REMOUNT), nil) == 0)
            #expect(Harness.exec([Harness.binary, "--root", root, "delete", "--force", id]).code == 0)
            #expect(((try? Files.list(root)) ?? ["?"]).isEmpty)
            Self.assertNothingLeft(h, id, "delete on a read-only root")
        }
    }

    // MARK: churn and concurrency

    static func count(_ path: String) -> Int { ((try? Files.list(path)) ?? []).count }

    /// BRIG_CHURN lifecycles (default 100; benchmarks/churn.sh runs 1,000 and measures the
    /// host): create, start, kill, delete through the CLI. No cgroup, state entry or mount may
    /// stay. (This process's own fds and memory are shared with tests running in parallel; the
    /// long-lived caller's growth is measured on brig-agent, AgentChurnTests.)
    @Test func churnLeavesNothingBehind() throws {
        let h = try Harness(); defer { h.cleanup() }
        try h.write(Harness.spec(["sleep", "1000"]))
        let n = Self.envInt("BRIG_CHURN", 100)
        let prefix = "churn-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        func cgroupDirs() -> Int {
            CgroupPlacementProbe.leaves(prefix: prefix).count
        }
        func lifecycle(_ i: Int) {
            let id = "\(prefix)-\(i)"
            for args in [["create", "--bundle", h.bundle, id], ["start", id], ["kill", id, "KILL"], ["delete", "--force", id]] {
                let r = h.brig(args)
                #expect(r.code == 0, "\(i) \(args[0]): \(r.err)")
            }
        }
        let t0 = monotonicSeconds()
        for i in 0..<n { lifecycle(i) }
        let elapsed = monotonicSeconds() - t0
        #expect(Self.hostTraces(h).isEmpty)
        #expect(Self.count(h.root) == 0, "state root holds \((try? Files.list(h.root)) ?? [])")
        #expect(cgroupDirs() == 0)
        print("churn: \(n) lifecycles in \(Int(elapsed * 1000)) ms")
    }

    /// 16 lifecycles at once on 4 ids: every call either works or fails with one of the
    /// lifecycle's own clear errors; afterwards nothing is left.
    @Test func concurrentLifecyclesOnOverlappingIDs() throws {
        let h = try Harness(); defer { h.cleanup() }
        try h.write(Harness.spec(["sleep", "1000"]))
        let ids = (0..<4).map { _ in Harness.uniqueID("overlap") }
        let expected = ["already exists", "does not exist", "cannot start", "is not running", "not stopped"]
        final class Box: @unchecked Sendable { var unexpected: [String] = []; var ok = 0; let m = PThreadMutexBox() }
        let box = Box()
        let threads = (0..<16).map { t in
            Threads.spawn {
                for round in 0..<6 {
                    let id = ids[(t + round) % ids.count]
                    for args in [["create", "--bundle", h.bundle, id], ["start", id], ["kill", id, "KILL"], ["delete", "--force", id]] {
                        let r = h.brig(args)
                        box.m.with {
                            if r.code == 0 { box.ok += 1 }
                            else if r.code != 1 || !expected.contains(where: { r.err.contains($0) }) {
                                box.unexpected.append("\(args[0]) \(id): exit \(r.code): \(r.err)")
                            }
                        }
                    }
                }
            }
        }
        for t in threads { pthread_join(t, nil) }
        #expect(box.unexpected.isEmpty, "\(box.unexpected)")
        #expect(box.ok >= 4 * 3, "too few calls succeeded: \(box.ok)")
        for id in ids {
            #expect(h.brig(["delete", "--force", id]).code == 0)
            Self.assertNothingLeft(h, id, "overlapping ids")
        }
    }
}

/// A pthread mutex for the tests' shared tallies.
final class PThreadMutexBox: @unchecked Sendable {
    private let m: UnsafeMutablePointer<pthread_mutex_t> = {
        let p = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        pthread_mutex_init(p, nil)
        return p
    }()
    func with(_ body: () -> Void) { pthread_mutex_lock(m); body(); pthread_mutex_unlock(m) }
}

/// Cgroup leaf directories whose name starts with a prefix, on every mounted hierarchy, where
/// production puts a container with the default cgroupsPath (the resolver create uses).
enum CgroupPlacementProbe {
    static func leaves(prefix: String) -> [String] {
        guard let layout = try? CgroupLayout.current(),
              let state = try? CgroupState.resolve(cgroupsPath: nil, containerID: "x", systemd: false, layout: layout) else { return [] }
        return state.paths.values.flatMap { dir in
            let parent = CgroupPath.parent(dir)
            return ((try? Files.list(parent)) ?? []).filter { $0.hasPrefix(prefix) }.map { parent + "/" + $0 }
        }
    }
}

