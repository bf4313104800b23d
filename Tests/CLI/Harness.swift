import BrigCgroups
import BrigLinux
import BrigNamespaces
import BrigOCI
import FoundationEssentials
import Glibc
import Testing

/// Runs the built `brig` binary the way a user or an engine does, in a private state root, on
/// bundles made from the busybox-static test rootfs (scripts/make-rootfs.sh).
struct Harness {
    static let packageRoot: String = {
        var parts = #filePath.split(separator: "/").map(String.init)
        parts.removeLast(3)
        return "/" + parts.joined(separator: "/")
    }()

    static var binary: String {
        if let b = getenv("BRIG_BINARY") { return String(cString: b) }
        return packageRoot + "/.build/debug/brig"
    }

    static var rootfsTemplate: String {
        if let r = getenv("BRIG_TEST_ROOTFS") { return String(cString: r) }
        return packageRoot + "/.cache/rootfs"
    }

    static let isRoot = getuid() == 0

    let dir: String
    let root: String
    let bundle: String

    init() throws {
        var template = Array("/tmp/brig-test-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw SystemError.last("mkdtemp") }
        dir = String(cString: p)
        chmod(dir, 0o755)  // a user-namespaced container root must be able to traverse it
        root = dir + "/state"
        bundle = dir + "/bundle"
        try Files.mkdirAll(bundle)
        guard Files.isDirectory(Harness.rootfsTemplate + "/bin") else {
            throw HarnessError("test rootfs missing at \(Harness.rootfsTemplate): run scripts/make-rootfs.sh .cache/rootfs")
        }
        guard Files.exists(Harness.binary) else { throw HarnessError("brig binary missing at \(Harness.binary): run swift build") }
        let r = Harness.exec(["/bin/cp", "-a", Harness.rootfsTemplate, bundle + "/rootfs"])
        guard r.code == 0 else { throw HarnessError("copy rootfs: \(r.err)") }
    }

    /// A spec like `brig spec` makes, without a terminal, running `args`, with a cgroup namespace
    /// (which the tests were written with; runc's default spec has none).
    static func spec(_ args: [String]) -> Spec {
        var s = DefaultSpec.make()
        s.linux?.namespaces?.append(Namespace(type: "cgroup"))
        s.process?.terminal = false
        s.process?.args = args
        s.mounts?.append(Mount(destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "mode=1777"]))
        return s
    }

    func write(_ spec: Spec) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted]
        try Files.writeAtomically(bundle + "/config.json", Array(try enc.encode(spec)))
    }

    func writeRaw(_ text: String) throws {
        try Files.writeAtomically(bundle + "/config.json", Array(text.utf8))
    }

    struct Result { var code: Int32; var out: String; var err: String }

    /// `brig --root <private> ARGS`.
    func brig(_ args: [String], global: [String] = [], stdin: String? = nil) -> Result {
        Harness.exec([Harness.binary, "--root", root] + global + args, stdin: stdin, cwd: bundle)
    }

    func run(_ spec: Spec, id: String = "c1") throws -> Result {
        try write(spec)
        return brig(["run", "--bundle", bundle, id])
    }

    /// Runs a program with pipes for stdio; returns its status and output.
    static func exec(_ argv: [String], stdin: String? = nil, cwd: String? = nil, extraFDs: [(Int32, Int32)] = [],
                     env: [String] = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]) -> Result {
        guard let (inR, inW) = try? Files.pipe(), let (outR, outW) = try? Files.pipe(), let (errR, errW) = try? Files.pipe() else {
            return Result(code: -1, out: "", err: "pipe failed")
        }
        var args = argv
        if let cwd { args = ["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", cwd] + argv }
        var o = Spawn.Options(path: args[0], args: args, env: env)
        o.fds = [(inR, 0), (outW, 1), (errW, 2)] + extraFDs
        guard let pid = try? Spawn.spawn(o) else { return Result(code: -1, out: "", err: "spawn \(argv[0]) failed") }
        close(inR); close(outW); close(errW)
        if let stdin { try? Files.writeAll(fd: inW, Array(stdin.utf8)) }
        close(inW)
        // A detached container inherits our pipes, so EOF may never come: read until the
        // process exits, then drain what is buffered without waiting for EOF.
        _ = fcntl(outR, F_SETFL, O_NONBLOCK); _ = fcntl(errR, F_SETFL, O_NONBLOCK)
        var out: [UInt8] = [], err: [UInt8] = []
        func drain() {
            var buf = [UInt8](repeating: 0, count: 65536)
            for (fd, isOut) in [(outR, true), (errR, false)] {
                while true {
                    let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                    if n <= 0 { break }
                    if isOut { out += buf[0..<n] } else { err += buf[0..<n] }
                }
            }
        }
        let status = ((try? Spawn.wait(pid, timeout: 120, poll: drain)) ?? nil)?.code ?? -1
        drain()
        close(outR); close(errR)
        return Result(code: status, out: String(decoding: out, as: UTF8.self), err: String(decoding: err, as: UTF8.self))
    }

    /// Nothing left behind: no state dir for `id`, no cgroup directory for it on any hierarchy,
    /// no process running from this test's bundle.
    func assertClean(_ id: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(!Files.exists(root + "/" + id), "state dir left behind for \(id)", sourceLocation: sourceLocation)
        // Where production puts the container's cgroup (BrigCgroups' resolver), on every hierarchy.
        // (An id that cannot name a cgroup, like "../x", has none to leave.)
        let layout = try? CgroupLayout.current()
        #expect(layout != nil, "no cgroup hierarchy found", sourceLocation: sourceLocation)
        let state = layout.flatMap { try? CgroupState.resolve(cgroupsPath: nil, containerID: id, systemd: false, layout: $0) }
        for dir in state?.paths.values.sorted() ?? [] {
            #expect(!Files.exists(dir), "cgroup \(dir) left behind", sourceLocation: sourceLocation)
        }
        // No brig process for this bundle (a stuck init or run) and no process in the container's cgroup.
        var left: [String] = []
        for name in (try? Files.list("/proc")) ?? [] {
            guard let pid = Int32(name), pid != getpid() else { continue }
            let cmd = String(decoding: (try? Files.read("/proc/\(name)/cmdline")) ?? [], as: UTF8.self)
            let cg = (try? Files.readString("/proc/\(name)/cgroup")) ?? ""
            if (cmd.contains(bundle) && cmd.contains("brig")) || cg.contains("/" + id + "\n") { left.append("\(pid): \(cmd)") }
        }
        #expect(left.isEmpty, "processes left behind: \(left)", sourceLocation: sourceLocation)
    }

    /// `brig [global] create --console-socket` for `id`, as an engine runs it: accepts brig's
    /// connection and returns the pty master it sent (with its payload) and create's exit.
    func createWithConsoleSocket(_ id: String, global: [String] = [], env: [String] = []) throws
        -> (master: Int32, name: String, exit: Spawn.Exit) {
        let sockPath = dir + "/console.sock"
        let listener = try UnixSocket.listen(sockPath)
        defer { close(listener); unlink(sockPath) }
        var o = Spawn.Options(path: Harness.binary, args: [Harness.binary, "--root", root] + global
                                + ["create", "--bundle", bundle, "--console-socket", sockPath, id], env: env)
        o.fds = []
        let pid = try Spawn.spawn(o)
        let conn = accept(listener, nil, nil)
        guard conn >= 0 else { throw SystemError.last("accept on the console socket") }
        let (master, name) = try UnixSocket.receiveFD(conn)
        close(conn)
        return (master, name, try Spawn.wait(pid))
    }

    /// Reads a pty master until `done(text so far)` or 5 s without output.
    static func readPTY(_ master: Int32, until done: (String) -> Bool) -> String {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while !done(String(decoding: out, as: UTF8.self)) {
            var p = pollfd(fd: master, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, 5000) <= 0 { break }
            let n = buf.withUnsafeMutableBytes { read(master, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    nonisolated(unsafe) static var counter = 0
    /// A container id unique across concurrently running tests (cgroups are host-wide).
    static func uniqueID(_ prefix: String) -> String {
        counter += 1
        return "\(prefix)-\(getpid())-\(counter)-\(UInt32.random(in: 0...UInt32.max))"
    }

    func cleanup() {
        for id in (try? Files.list(root)) ?? [] { _ = brig(["delete", "--force", id]) }
        Files.removeAll(dir)
    }
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}
