@testable import BrigCgroups
import BrigOCI
import FoundationEssentials
import Testing

@Suite struct SystemdAnnotationTests {
    func props(_ a: [String: String]) throws -> [SystemdProperty] { try SystemdAnnotations.properties(a) }
    func error(_ a: [String: String]) -> String {
        do { _ = try props(a); return "no error" } catch { return "\(error)" }
    }

    @Test func runcsExamplesAndOtherAnnotationsIgnored() throws {
        let p = try props([
            "org.systemd.property.TimeoutStopUSec": "uint64 123456789",
            "org.systemd.property.CollectMode": "'inactive-or-failed'",
            "org.opencontainers.image.title": "not a property",
        ])
        #expect(p == [SystemdProperty("CollectMode", .string("inactive-or-failed")),
                      SystemdProperty("TimeoutStopUSec", .uint64(123_456_789))])
    }

    @Test func gvariantValues() throws {
        func one(_ text: String) throws -> DBusValue { try props(["org.systemd.property.SomeThing": text])[0].value }
        #expect(try one("5") == .int32(5))
        #expect(try one("-5") == .int32(-5))
        #expect(try one("0x10") == .int32(16))
        #expect(try one("1.5") == .double(1.5))
        #expect(try one("@t 5") == .uint64(5))
        #expect(try one("uint32 7") == .uint32(7))
        #expect(try one("int16 -32768") == .int16(-32768))
        #expect(try one("byte 255") == .byte(255))
        #expect(try one("true") == .bool(true))
        #expect(try one("boolean false") == .bool(false))
        #expect(try one(#""it's \"x\"\n""#) == .string("it's \"x\"\n"))
        #expect(try one(#"'\u00e9'"#) == .string("é"))
        #expect(try one("objectpath '/a/b'") == .objectPath("/a/b"))
        #expect(try one(" ['a', \"b\"] ") == .array("s", [.string("a"), .string("b")]))
        #expect(try one("@as []") == .array("s", []))
        #expect(try one("@at [1, 2]") == .array("t", [.uint64(1), .uint64(2)]))
    }

    @Test func secondsBecomeMicroseconds() throws {
        #expect(try props(["org.systemd.property.TimeoutStopSec": "5"]) == [SystemdProperty("TimeoutStopUSec", .uint64(5_000_000))])
        #expect(try props(["org.systemd.property.RuntimeMaxSec": "1.5"]) == [SystemdProperty("RuntimeMaxUSec", .uint64(1_500_000))])
        #expect(try props(["org.systemd.property.TimeoutStopSec": "uint64 2"]) == [SystemdProperty("TimeoutStopUSec", .uint64(2_000_000))])
        // Not "<lowercase>Sec": kept as it is (runc's rule).
        #expect(try props(["org.systemd.property.XSec": "5"]) == [SystemdProperty("XSec", .int32(5))])
        #expect(error(["org.systemd.property.TimeoutStopSec": "'5s'"]).contains("a number, not a string"))
        #expect(error(["org.systemd.property.TimeoutStopSec": "-1"]).contains("TimeoutStopSec"))
    }

    @Test func aBadAnnotationIsNamed() {
        let key = "org.systemd.property.CollectMode"
        for (a, reason) in [([key: "inactive-or-failed"], "unknown word"),
                            ([key: "'unterminated"], "closing quote"),
                            ([key: "uint64 -1"], "not a valid uint64"),
                            ([key: "byte 256"], "not a valid byte"),
                            ([key: "[1, 'a']"], "a string where type int32 was expected"),
                            ([key: "[1, 1.5]"], "\"1.5\" is not a valid int32"),
                            ([key: "[]"], "needs its type"),
                            ([key: "5 6"], "after the value"),
                            ([key: "@(ss) ('a', 'b')"], "not supported"),
                            ([key: ""], "missing")] {
            let e = error(a)
            #expect(e.hasPrefix("annotations[\"\(key)\"]"), "\(e)")
            #expect(e.contains(reason), "\(e)")
        }
        #expect(error(["org.systemd.property.Ab": "1"]).contains("too short"))
        #expect(error(["org.systemd.property.Memory-Max": "1"]).contains("not an ASCII letter"))
        #expect(error(["org.systemd.property.": "1"]).contains("too short"))
    }

    @Test func versionsAsRuncChecksThem() {
        #expect(SystemdProperties.parseVersion("252.39-1~deb12u2") == 252)
        #expect(SystemdProperties.parseVersion("v245.4-1.fc32") == 245)
        #expect(SystemdProperties.parseVersion("239") == 239)
        #expect(SystemdProperties.parseVersion("unknown") == nil)
        let p = [SystemdProperty("CPUQuotaPeriodUSec", .uint64(50_000)), SystemdProperty("CPUQuotaPerSecUSec", .uint64(500_000)),
                 SystemdProperty("AllowedCPUs", .array("y", [.byte(1)])), SystemdProperty("MemoryMax", .uint64(1))]
        #expect(SystemdProperties.supported(p, version: 252) == p)
        #expect(SystemdProperties.supported(p, version: 243).map(\.name) == ["CPUQuotaPeriodUSec", "CPUQuotaPerSecUSec", "MemoryMax"])
        #expect(SystemdProperties.supported(p, version: 241).map(\.name) == ["CPUQuotaPerSecUSec", "MemoryMax"])
        #expect(SystemdProperties.supported(p, version: nil).map(\.name) == ["CPUQuotaPerSecUSec", "MemoryMax"])
    }
}

@Suite struct SystemdManagerVersionTests {
    let fs = TempCgroupFS()
    let fake = FakeSystemd()

    func start(_ res: String, version: Int, extra: [SystemdProperty] = []) throws -> (SystemdManager, [SystemdProperty]) {
        fs.touch("cgroup.controllers", "cpu cpuset memory pids")
        fs.touch("cgroup.subtree_control", "")
        let fs = self.fs
        fake.version = version
        fake.makeDirectory = { _ in
            for f in ["cgroup.procs", "cpu.max", "cpuset.cpus", "memory.max", "cgroup.controllers"] {
                fs.touch("system.slice/brig-c1.scope/" + f, f == "cgroup.controllers" ? "cpu cpuset memory pids" : "")
            }
        }
        let fake = self.fake
        let m = try SystemdManager.make(cgroupsPath: nil, containerID: "c1", user: false, layout: .unified(), root: fs.root,
                                        connect: { fake })
        m.skipDevices = true
        m.extraProperties = extra
        try m.create()
        try m.apply(try resources(res))
        try m.addProcess(42)
        return (m, fake.started["brig-c1.scope"] ?? [])
    }

    @Test func anOldSystemdGetsTheFilesInstead() throws {
        let (_, p) = try start(#"{"cpu":{"quota":50000,"period":50000,"cpus":"0"}}"#, version: 241)
        let names = p.map(\.name)
        #expect(!names.contains("AllowedCPUs") && !names.contains("CPUQuotaPeriodUSec"))
        #expect(names.contains("CPUQuotaPerSecUSec"))
        #expect(fs.read("system.slice/brig-c1.scope/cpu.max") == "50000 50000")
        #expect(fs.read("system.slice/brig-c1.scope/cpuset.cpus") == "0")
        #expect(fake.calls == ["version", "start brig-c1.scope"])
    }

    @Test func aNewSystemdGetsThemAndIsAskedOnlyWhenNeeded() throws {
        let (m, p) = try start(#"{"cpu":{"quota":50000,"period":50000,"cpus":"0"}}"#, version: 252)
        #expect(p.map(\.name).contains("AllowedCPUs") && p.map(\.name).contains("CPUQuotaPeriodUSec"))
        try m.update(try resources(#"{"cpu":{"cpus":"0"}}"#))
        #expect(fake.calls == ["version", "start brig-c1.scope", "set brig-c1.scope AllowedCPUs"])  // asked once
    }

    @Test func withoutSuchPropertiesTheVersionIsNotAsked() throws {
        let (_, p) = try start(#"{"memory":{"limit":4096},"cpu":{"quota":50000}}"#, version: 200)
        #expect(p.map(\.name).contains("MemoryMax") && p.map(\.name).contains("CPUQuotaPerSecUSec"))
        #expect(fake.calls == ["start brig-c1.scope"])
    }

    @Test func annotationsComeAfterTheResources() throws {
        let extra = [SystemdProperty("MemoryMax", .uint64(8192)), SystemdProperty("CollectMode", .string("inactive-or-failed"))]
        let (_, p) = try start(#"{"memory":{"limit":4096}}"#, version: 252, extra: extra)
        #expect(Array(p.suffix(2)) == extra)
        #expect(p.firstIndex(of: SystemdProperty("MemoryMax", .uint64(4096)))! < p.firstIndex(of: extra[0])!)
    }
}

@Suite struct SystemdUserErrorTests {
    @Test func aUserManagerRefusingToMoveTheProcessSaysWhy() throws {
        let fs = TempCgroupFS()
        fs.touch("cgroup.controllers", "memory pids")
        let fake = FakeSystemd()
        fake.refuse = .remote(call: "StartTransientUnit brig-c1.scope", name: "job resources", message: "ended with result \"resources\"")
        let m = try SystemdManager.make(cgroupsPath: nil, containerID: "c1", user: true, layout: .unified(), root: fs.root,
                                        connect: { fake })
        m.skipDevices = true
        try m.create()
        do {
            try m.addProcess(9)
            Issue.record("expected the start to fail")
        } catch {
            #expect("\(error)".contains("brig-c1.scope") && "\(error)".contains("the user's delegated tree"), "\(error)")
        }
    }
}
