import BrigCore
import BrigOCI
import FoundationEssentials
import Testing

@Suite struct DecodingTests {
    let minimal = #"{"ociVersion":"1.2.0","root":{"path":"rootfs"},"process":{"cwd":"/","user":{"uid":0,"gid":0},"args":["sh"]}}"#

    @Test func decodesMinimalAndIgnoresUnknownKeys() throws {
        let withExtra = minimal.replacingFirst("{", with: #"{"x-vendor":{"a":1},"#)
        let spec = try ConfigLoader.decode(Array(withExtra.utf8))
        #expect(spec.process?.args == ["sh"])
        #expect(spec.root?.path == "rootfs")
        try Validation.validate(spec)
    }

    @Test func defaultSpecHasRuncNamespaces() {
        #expect(DefaultSpec.make().linux?.namespaces?.map(\.type) == ["pid", "network", "ipc", "uts", "mount"])
        #expect(DefaultSpec.make(rootless: true).linux?.namespaces?.map(\.type) == ["pid", "ipc", "uts", "mount", "user"])
    }

    @Test func defaultSpecRoundTrips() throws {
        let spec = DefaultSpec.make()
        let data = try JSONEncoder().encode(spec)
        #expect(try ConfigLoader.decode(Array(data)) == spec)
        try Validation.validate(spec)
        try Validation.validate(DefaultSpec.make(rootless: true, uid: 1000, gid: 1000))
    }

    @Test(arguments: [
        ("[1,2]", ""),
        (#"{"ociVersion":"1.2.0","process":{"cwd":"/","user":{"uid":0,"gid":0},"args":[1]}}"#, "process.args[0]"),
        (#"{"ociVersion":"1.2.0","linux":{"namespaces":[{"type":5}]}}"#, "linux.namespaces[0].type"),
        (#"{"ociVersion":"1.2.0","process":{"cwd":"/","args":["a"]}}"#, "process.user"),
        (#"{"ociVersion":"1.2.0","mounts":[{"type":"tmpfs"}]}"#, "mounts[0].destination"),
        (#"{"ociVersion":"1.2.0","linux":{"resources":{"memory":{"limit":"lots"}}}}"#, "linux.resources.memory.limit"),
    ])
    func decodingErrorsNameTheField(json: String, field: String) {
        #expect(throws: ConfigError.self) { try ConfigLoader.decode(Array(json.utf8)) }
        do { _ = try ConfigLoader.decode(Array(json.utf8)) } catch { #expect(error.field == field) }
    }
}

@Suite struct ValidationTests {
    func base() -> Spec {
        var s = DefaultSpec.make()
        s.process?.terminal = false
        return s
    }

    func field(_ s: Spec) -> String? {
        do { try Validation.validate(s); return nil } catch { return error.field }
    }

    @Test func acceptsDefault() { #expect(field(base()) == nil) }

    @Test func rejectsEachRule() {
        var s = base(); s.ociVersion = ""
        #expect(field(s) == "ociVersion")
        s = base(); s.root = nil
        #expect(field(s) == "root.path")
        s = base(); s.process = nil
        #expect(field(s) == "process")
        s = base(); s.process?.env = ["NOEQUALS"]
        #expect(field(s) == "process.env[0]")
        s = base(); s.process?.rlimits = [Rlimit(type: "RLIMIT_NOFILE", hard: 1, soft: 2)]
        #expect(field(s) == "process.rlimits[0]")
        s = base(); s.process?.rlimits = [Rlimit(type: "RLIMIT_NOFILE", hard: 1, soft: 1), Rlimit(type: "RLIMIT_NOFILE", hard: 1, soft: 1)]
        #expect(field(s) == "process.rlimits[1].type")
        s = base(); s.process?.oomScoreAdj = 1001
        #expect(field(s) == "process.oomScoreAdj")
        s = base(); s.linux?.namespaces?.append(Namespace(type: "net"))
        #expect(field(s) == "linux.namespaces[5].type")
        s = base(); s.linux?.namespaces = [Namespace(type: "mount", path: "relative")]
        #expect(field(s) == "linux.namespaces[0].path")
        s = base(); s.linux?.namespaces?.append(Namespace(type: "user"))
        #expect(field(s) == "linux.uidMappings")
        s = base(); s.linux?.timeOffsets = ["monotonic": TimeOffset(secs: 1)]
        #expect(field(s) == "linux.timeOffsets")
        s = base(); s.linux?.namespaces?.append(Namespace(type: "time")); s.linux?.timeOffsets = ["realtime": TimeOffset(secs: 1)]
        #expect(field(s) == "linux.timeOffsets.realtime")
        s = base(); s.linux?.namespaces?.removeAll { $0.type == "uts" }
        #expect(field(s) == "hostname")
        s = base(); s.linux?.rootfsPropagation = "sideways"
        #expect(field(s) == "linux.rootfsPropagation")
        s = base(); s.linux?.devices = [Device(type: "x", path: "/dev/x")]
        #expect(field(s) == "linux.devices[0].type")
        s = base(); s.linux?.devices = [Device(type: "c", path: "/dev/x")]
        #expect(field(s) == "linux.devices[0]")
        s = base(); s.linux?.sysctl = ["net.ipv4.ip_forward": "1"]; s.linux?.namespaces?.removeAll { $0.type == "network" }
        #expect(field(s) == "linux.sysctl.net.ipv4.ip_forward")
        s = base(); s.linux?.sysctl = ["kernel.msgmax": "1"]; s.linux?.namespaces?.removeAll { $0.type == "ipc" }
        #expect(field(s) == "linux.sysctl.kernel.msgmax")
        s = base(); s.linux?.sysctl = ["kernel.hostname": "x"]
        #expect(field(s) == "linux.sysctl.kernel.hostname")  // runc: conflicts with `hostname`
        s = base(); s.linux?.sysctl = ["kernel.domainname": "x"]
        #expect(field(s) == nil)  // runc accepts it with a private uts namespace
        s = base(); s.hooks = Hooks(); s.hooks?.poststop = [Hook(path: "rel")]
        #expect(field(s) == "hooks.poststop[0].path")
        s = base(); s.linux?.cgroupsPath = "/a/../b"
        #expect(field(s) == "linux.cgroupsPath")
    }
}

@Suite struct TableTests {
    @Test func signals() {
        #expect(Tables.signal("TERM") == 15)
        #expect(Tables.signal("SIGKILL") == 9)
        #expect(Tables.signal("sigusr1") == 10)
        #expect(Tables.signal("9") == 9)
        #expect(Tables.signal("RTMIN+2") == 36)
        #expect(Tables.signal("RTMAX") == 64)
        #expect(Tables.signal("0") == 0)  // kill(2)'s existence check, as runc accepts it
        #expect(Tables.signal("-1") == nil)
        #expect(Tables.signal("65") == nil)
        #expect(Tables.signal("NOPE") == nil)
    }

    @Test func capabilities() {
        #expect(Tables.capabilityNumber("CAP_CHOWN") == 0)
        #expect(Tables.capabilityNumber("CAP_SYS_ADMIN") == 21)
        #expect(Tables.capabilityNumber("CAP_CHECKPOINT_RESTORE") == 40)
        #expect(Tables.capabilityNumber("CAP_NOPE") == nil)
    }
}

extension String {
    func replacingFirst(_ a: String, with b: String) -> String {
        guard let r = self.firstRange(of: a) else { return self }
        var s = self; s.replaceSubrange(r, with: b); return s
    }
}
