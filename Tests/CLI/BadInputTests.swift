import BrigLinux
import BrigOCI
import FoundationEssentials
import Glibc
import Testing

/// Every bad input gets one clear message naming the field or path, a non-zero exit, and
/// leaves nothing behind (state dir, cgroup, process).
@Suite("bad input", .enabled(if: Harness.isRoot, "needs root"))
struct BadInputTests {
    func expectFailure(_ h: Harness, _ id: String, contains: String, args: [String]? = nil,
                       sourceLocation: SourceLocation = #_sourceLocation) {
        let r = h.brig(args ?? ["create", "--bundle", h.bundle, id])
        #expect(r.code != 0, sourceLocation: sourceLocation)
        #expect(r.err.contains(contains), "stderr was: \(r.err)", sourceLocation: sourceLocation)
        h.assertClean(id, sourceLocation: sourceLocation)
    }

    @Test func missingBundleAndConfig() throws {
        let h = try Harness(); defer { h.cleanup() }
        let id = Harness.uniqueID("bad")
        expectFailure(h, id, contains: "bundle /nonexistent/bundle: no such directory",
                      args: ["create", "--bundle", "/nonexistent/bundle", id])
        expectFailure(h, id, contains: "\(h.bundle)/config.json: cannot read")
    }

    @Test(arguments: [
        ("{ not json", "config.json: config.json is not valid JSON"),
        (#"{"ociVersion": 1}"#, "ociVersion: expected a string"),
        (#"{"ociVersion": "1.2.0", "root": {"path": "rootfs"}, "process": {"cwd": "/", "user": {"uid": 0, "gid": 0}, "args": "sh"}}"#,
         "process.args: expected an array"),
        (#"{"ociVersion": "1.2.0", "root": {"path": "rootfs"}, "process": {"cwd": "/", "user": {"uid": "root", "gid": 0}, "args": ["sh"]}}"#,
         "process.user.uid: expected an integer"),
        (#"{"ociVersion": "1.2.0", "process": {"cwd": "/", "user": {"uid": 0, "gid": 0}, "args": ["sh"]}}"#,
         "root.path: required on Linux"),
        (#"{"ociVersion": "1.2.0", "root": {"path": "rootfs"}, "process": {"cwd": "relative", "user": {"uid": 0, "gid": 0}, "args": ["sh"]}}"#,
         "process.cwd: must be an absolute path"),
        (#"{"ociVersion": "1.2.0", "root": {"path": "rootfs"}, "process": {"cwd": "/", "user": {"uid": 0, "gid": 0}, "args": []}}"#,
         "process.args: must contain at least one entry"),
    ])
    func malformedConfig(json: String, message: String) throws {
        let h = try Harness(); defer { h.cleanup() }
        try h.writeRaw(json)
        expectFailure(h, Harness.uniqueID("json"), contains: message)
    }

    @Test func invalidLinuxSection() throws {
        let h = try Harness(); defer { h.cleanup() }
        let id = Harness.uniqueID("linux")
        var s = Harness.spec(["true"])
        s.linux?.namespaces?.append(Namespace(type: "bogus"))
        try h.write(s)
        expectFailure(h, id, contains: "linux.namespaces[6].type: unknown namespace type \"bogus\"")
        s = Harness.spec(["true"])
        s.linux?.namespaces?.append(Namespace(type: "pid"))
        try h.write(s)
        expectFailure(h, id, contains: "duplicate namespace \"pid\"")
        s = Harness.spec(["true"])
        s.linux?.uidMappings = [IDMapping(containerID: 0, hostID: 1000, size: 1)]
        try h.write(s)
        expectFailure(h, id, contains: "linux.uidMappings: mappings given without a user namespace")
        s = Harness.spec(["true"])
        s.mounts?.append(Mount(destination: "relative/dest", type: "tmpfs", source: "tmpfs"))
        try h.write(s)
        expectFailure(h, id, contains: "mounts[8].destination: must be an absolute path")
        s = Harness.spec(["true"])
        s.linux?.sysctl = ["kernel.panic": "1"]
        try h.write(s)
        expectFailure(h, id, contains: "linux.sysctl.kernel.panic: not namespaced")
        s = Harness.spec(["true"])
        s.process?.rlimits = [Rlimit(type: "RLIMIT_BOGUS", hard: 1, soft: 1)]
        try h.write(s)
        expectFailure(h, id, contains: "process.rlimits[0].type: unknown rlimit \"RLIMIT_BOGUS\"")
    }

    @Test func rootfsAndExecutableMustExist() throws {
        let h = try Harness(); defer { h.cleanup() }
        let id = Harness.uniqueID("exist")
        var s = Harness.spec(["true"])
        s.root?.path = "/nonexistent/rootfs"
        try h.write(s)
        expectFailure(h, id, contains: "root.path: rootfs /nonexistent/rootfs does not exist")
        try h.write(Harness.spec(["no-such-binary"]))
        expectFailure(h, id, contains: "exec: \"no-such-binary\": executable file not found in $PATH")
        try h.write(Harness.spec(["/bin/nope"]))
        expectFailure(h, id, contains: "exec: \"/bin/nope\": no such file or directory")
    }

    @Test func mountFailureNamesTheMount() throws {
        let h = try Harness(); defer { h.cleanup() }
        var s = Harness.spec(["true"])
        s.mounts?.append(Mount(destination: "/data", type: "bind", source: "/nonexistent/source", options: ["bind"]))
        try h.write(s)
        expectFailure(h, Harness.uniqueID("mnt"), contains: "mount /nonexistent/source on /data")
    }

    @Test func idsExistingUnknownAndInvalid() throws {
        let h = try Harness(); defer { h.cleanup() }
        try h.write(Harness.spec(["sleep", "100"]))
        let id = Harness.uniqueID("dup")
        #expect(h.brig(["create", "--bundle", h.bundle, id]).code == 0)
        let again = h.brig(["create", "--bundle", h.bundle, id])
        #expect(again.code != 0)
        #expect(again.err.contains("container with id \(id) already exists"))
        #expect(h.brig(["state", id]).code == 0, "the existing container must be untouched")
        #expect(h.brig(["delete", "--force", id]).code == 0)
        for verb in ["start", "state", "kill", "delete"] {
            let r = h.brig([verb, "unknown-id"])
            #expect(r.code != 0)
            #expect(r.err.contains("container unknown-id does not exist"), "\(verb): \(r.err)")
        }
        expectFailure(h, "../escape", contains: "invalid container id")
        #expect(h.brig(["create", "--bundle", h.bundle]).err.contains("requires a container id"))
        #expect(h.brig(["create", "--bogus-flag", "x"]).err.contains("flag provided but not defined: -bogus-flag"))
    }

    /// Engines read errors from the log file in runc's JSON format.
    @Test func jsonLogFormat() throws {
        let h = try Harness(); defer { h.cleanup() }
        let log = h.dir + "/log.json"
        let r = h.brig(["state", "missing"], global: ["--log", log, "--log-format", "json"])
        #expect(r.code == 1)
        let line = try Files.readString(log)
        struct Entry: Decodable { var level: String; var msg: String; var time: String }
        let e = try JSONDecoder().decode(Entry.self, from: Data(line.utf8))
        #expect(e.level == "error")
        #expect(e.msg == "container missing does not exist")
        #expect(e.time.hasSuffix("Z") && e.time.count >= 20)
        // logrus writes the keys sorted, as runc's log lines are.
        #expect(line.hasPrefix("{\"level\":\"error\",\"msg\":\"container missing does not exist\",\"time\":\""), "\(line)")
        #expect(r.err.contains("container missing does not exist"))
    }
}
