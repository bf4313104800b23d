import BrigLinux
import Glibc
import Testing

/// Spawn.spawn(_:intoCgroup:): the child is born in the cgroup2 directory, with the fd
/// placement and signal state posix_spawn gives; a cgroup the kernel will not clone into means
/// no child and nil (the caller spawns as before).
@Suite struct SpawnIntoCgroupTests {
    static var isRoot: Bool { geteuid() == 0 }

    /// The cgroup2 mount point (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified` on a hybrid host).
    static func cgroup2Mount() -> String? {
        let text = (try? Files.readString("/proc/self/mountinfo")) ?? ""
        for line in text.split(separator: "\n") where line.contains(" - cgroup2 ") {
            let fields = line.split(separator: " ")
            if fields.count > 4 { return String(fields[4]) }
        }
        return nil
    }

    @Test func notACgroupSpawnsNothing() throws {
        let fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC); defer { close(fd) }
        let o = Spawn.Options(path: "/bin/true", args: ["true"], env: [])
        #expect(try Spawn.spawn(o, intoCgroup: fd) == nil)
    }

    @Test(.enabled(if: isRoot && cgroup2Mount() != nil, "needs root and a cgroup2 mount"))
    func childIsBornInTheCgroupWithItsFds() throws {
        let name = "brig-spawn-test-\(getpid())"
        let dir = Self.cgroup2Mount()! + "/" + name
        #expect(mkdir(dir, 0o755) == 0)
        defer { rmdir(dir) }
        let cg = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC); defer { close(cg) }
        let (r, w) = try Files.pipe()
        let kept = try Files.open("/dev/null", O_RDONLY)  // O_CLOEXEC
        // fd 1: the pipe; `kept` onto itself: still open after exec.
        let script = "grep '^0::' /proc/self/cgroup; [ -e /proc/self/fd/\(kept) ] && echo kept"
        var o = Spawn.Options(path: "/bin/sh", args: ["sh", "-c", script], env: [])
        o.fds = [(w, 1), (kept, kept)]
        let born = try Spawn.spawn(o, intoCgroup: cg)
        close(w); close(kept)
        let pid = try #require(born, "clone3 CLONE_INTO_CGROUP refused on this kernel")
        let out = String(decoding: try Files.read(fd: r), as: UTF8.self); close(r)
        #expect(try Spawn.wait(pid) == .exited(0))
        #expect(out.hasPrefix("0::/") && out.hasSuffix("/" + name + "\nkept\n"), "child's cgroup and fds: \(out)")
    }

    @Test(.enabled(if: isRoot && cgroup2Mount() != nil, "needs root and a cgroup2 mount"))
    func execFailureNamesThePath() throws {
        let own = try Files.readString("/proc/self/cgroup").split(separator: "\n").first { $0.hasPrefix("0::") }
        let dir = Self.cgroup2Mount()! + String(try #require(own).dropFirst(3))
        let cg = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC); defer { close(cg) }
        do {
            _ = try Spawn.spawn(Spawn.Options(path: "/nonexistent/brig-test", args: ["x"], env: []), intoCgroup: cg)
            Issue.record("spawn of a missing executable succeeded")
        } catch {
            #expect(error.errno == ENOENT && "\(error)".contains("/nonexistent/brig-test"), "\(error)")
        }
    }
}
