@testable import BrigCgroups
import BrigOCI
import FoundationEssentials
import Glibc
import Testing

@Suite struct DBusMarshallingTests {
    /// libdbus's Hello call, byte for byte (the call every bus client sends first).
    @Test func helloCallMatchesTheReferenceBytes() throws {
        let m = DBusMessage.call(serial: 1, destination: "org.freedesktop.DBus", path: "/org/freedesktop/DBus",
                                 interface: "org.freedesktop.DBus", member: "Hello")
        var golden: [UInt8] = Array("l".utf8) + [1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0x6d, 0, 0, 0]
        golden += [1, 1, UInt8(ascii: "o"), 0, 21, 0, 0, 0] + Array("/org/freedesktop/DBus".utf8) + [0, 0, 0]
        golden += [2, 1, UInt8(ascii: "s"), 0, 20, 0, 0, 0] + Array("org.freedesktop.DBus".utf8) + [0, 0, 0, 0]
        golden += [3, 1, UInt8(ascii: "s"), 0, 5, 0, 0, 0] + Array("Hello".utf8) + [0, 0, 0]
        golden += [6, 1, UInt8(ascii: "s"), 0, 20, 0, 0, 0] + Array("org.freedesktop.DBus".utf8) + [0, 0, 0, 0]
        #expect(try m.encode() == golden)
        #expect(golden.count == 128)
        #expect(try DBusMessage.decode(golden) == m)
    }

    /// A string, then an array of (sv) whose first element is 8-aligned after its length.
    @Test func propertyArrayAlignment() throws {
        var e = DBusEncoder()
        try e.encode(.string("a"))
        try e.encode(.array("(sv)", [SystemdProperty("Delegate", .bool(true)).dbus]))
        let golden: [UInt8] = [1, 0, 0, 0, UInt8(ascii: "a"), 0, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0]
            + Array("Delegate".utf8) + [0, 1, UInt8(ascii: "b"), 0, 1, 0, 0, 0]
        #expect(e.bytes == golden)
        var d = DBusDecoder(golden)
        #expect(try d.decode(signature: "sa(sv)") == [.string("a"), .array("(sv)", [SystemdProperty("Delegate", .bool(true)).dbus])])
        // An empty array still pads to its element's alignment; its length excludes the padding.
        var empty = DBusEncoder()
        try empty.encode(.uint32(7))
        try empty.encode(.array("(sa(sv))", []))
        #expect(empty.bytes == [7, 0, 0, 0, 0, 0, 0, 0])
    }

    @Test func jobRemovedSignalRoundTripsAndBigEndianDecodes() throws {
        var m = DBusMessage(kind: .signal, serial: 9, path: "/org/freedesktop/systemd1",
                            interface: "org.freedesktop.systemd1.Manager", member: "JobRemoved",
                            body: [.uint32(42), .objectPath("/org/freedesktop/systemd1/job/42"), .string("brig-c1.scope"), .string("done")])
        m.sender = ":1.0"
        let bytes = try m.encode()
        #expect(try DBusMessage.length(ofMessageStartingWith: bytes[..<16]) == bytes.count)
        #expect(try DBusMessage.decode(bytes) == m)
        // A big-endian u32 and string.
        var be = DBusDecoder([0, 0, 0, 5, 0, 0, 0, 2, UInt8(ascii: "o"), UInt8(ascii: "k"), 0], bigEndian: true)
        #expect(try be.decode(signature: "us") == [.uint32(5), .string("ok")])
    }

    @Test func malformedInputIsAnErrorNotACrash() throws {
        let good = try DBusMessage.call(serial: 3, destination: nil, path: "/", interface: "i.f", member: "M",
                                        body: [.string("x"), .array("y", [.byte(1), .byte(2)])]).encode()
        #expect(throws: DBusFormatError.self) { try DBusMessage.decode(Array(good.dropLast())) }
        var lying = good
        lying[good.count - 6] = 200  // the array's length runs past the end
        #expect(throws: DBusFormatError.self) { try DBusMessage.decode(lying) }
        var d = DBusDecoder([1, 0, 0, 0, UInt8(ascii: "a"), 1])  // no nul terminator
        #expect(throws: DBusFormatError.self) { try d.decode(signature: "s") }
        #expect(throws: DBusFormatError.self) { try DBusDecoder.singleType("(su") }
        #expect(throws: DBusFormatError.self) { try DBusEncoder().encodeMismatched() }
    }

    @Test func addressesAndCandidates() {
        #expect(DBusAddress.parse("unix:path=/run/user/1000/bus,guid=ab;tcp:host=x") == [DBusAddress(path: "/run/user/1000/bus", isBus: true)])
        #expect(DBusAddress.parse("unix:path=/tmp/a%20b") == [DBusAddress(path: "/tmp/a b", isBus: true)])
        let env = ["XDG_RUNTIME_DIR": "/run/user/1000"]
        #expect(DBusAddress.candidates(user: true, env: { env[$0] }).map(\.path) == ["/run/user/1000/systemd/private", "/run/user/1000/bus"])
        #expect(DBusAddress.candidates(user: false, env: { _ in nil }).map(\.path) == ["/run/systemd/private", "/run/dbus/system_bus_socket"])
    }
}

extension DBusEncoder {
    func encodeMismatched() throws {
        var e = self
        try e.encode(.array("u", [.string("not a u32")]))
    }
}

@Suite struct SystemdPropertyTests {
    func value(_ p: [SystemdProperty], _ name: String) -> DBusValue? { p.first { $0.name == name }?.value }

    @Test func unitNamingAsRunc() throws {
        let u = try SystemdUnit.parse(cgroupsPath: nil, containerID: "c1", user: false)
        #expect(u == SystemdUnit(name: "brig-c1.scope", slice: "system.slice", user: false, containerID: "c1"))
        #expect(try u.cgroupPath() == "/system.slice/brig-c1.scope")
        let k = try SystemdUnit.parse(cgroupsPath: "kubepods-besteffort.slice:cri-containerd:abc", containerID: "x", user: false)
        #expect(k.name == "cri-containerd-abc.scope")
        #expect(try k.cgroupPath() == "/kubepods.slice/kubepods-besteffort.slice/cri-containerd-abc.scope")
        let user = try SystemdUnit.parse(cgroupsPath: "", containerID: "c1", user: true)
        #expect(user.slice == "user.slice")
        #expect(try user.cgroupPath(managerRoot: "/user.slice/user-1000.slice/user@1000.service")
                == "/user.slice/user-1000.slice/user@1000.service/user.slice/brig-c1.scope")
        let slice = try SystemdUnit.parse(cgroupsPath: "machine.slice::pod-a.slice", containerID: "x", user: false)
        #expect(slice.isSlice && slice.name == "pod-a.slice")
        #expect(value(slice.startProperties(pid: 5, unified: true), "PIDs") == nil)
        #expect(value(slice.startProperties(pid: 5, unified: true), "Wants") == .array("s", [.string("machine.slice")]))
        expectCgroupError("slice:prefix:name") { _ = try SystemdUnit.parse(cgroupsPath: "/a/b", containerID: "x", user: false) }
        expectCgroupError("invalid slice name") { _ = try SystemdUnit.parse(cgroupsPath: "bad:p:n", containerID: "x", user: false) }
    }

    @Test func startPropertiesDelegateAndPlaceThePid() {
        let p = SystemdUnit(name: "brig-c1.scope", slice: "system.slice", user: false, containerID: "c1").startProperties(pid: 4242, unified: true)
        #expect(value(p, "Slice") == .string("system.slice"))
        #expect(value(p, "Delegate") == .bool(true))
        #expect(value(p, "PIDs") == .array("u", [.uint32(4242)]))
        #expect(value(p, "IOAccounting") == .bool(true))
        #expect(value(p, "DefaultDependencies") == .bool(false))
    }

    @Test func cpuQuotaRoundsUpToWholePercents() {
        #expect(SystemdProperties.cpuQuota(quota: 50_000, period: 100_000)
                == [SystemdProperty("CPUQuotaPeriodUSec", .uint64(100_000)), SystemdProperty("CPUQuotaPerSecUSec", .uint64(500_000))])
        #expect(SystemdProperties.cpuQuota(quota: 12_345, period: 0) == [SystemdProperty("CPUQuotaPerSecUSec", .uint64(130_000))])
        #expect(SystemdProperties.cpuQuota(quota: -1, period: 50_000)
                == [SystemdProperty("CPUQuotaPeriodUSec", .uint64(50_000)), SystemdProperty("CPUQuotaPerSecUSec", .uint64(.max))])
        #expect(SystemdProperties.cpuQuota(quota: 0, period: 0).isEmpty)
    }

    @Test func cpusetMasks() throws {
        #expect(try SystemdProperties.bitmask("0-3,8", field: "cpu.cpus") == [0x0f, 0x01])
        #expect(try SystemdProperties.bitmask("1", field: "cpu.cpus") == [0x02])
        expectCgroupError("linux.resources.cpu.cpus") { _ = try SystemdProperties.bitmask("3-1", field: "cpu.cpus") }
        expectCgroupError("linux.resources.cpu.mems") { _ = try SystemdProperties.bitmask("x", field: "cpu.mems") }
    }

    @Test func resourcesBecomeRuncsProperties() throws {
        let r = try resources(#"{"memory":{"limit":1073741824,"reservation":536870912,"swap":2147483648},"cpu":{"shares":1024,"quota":20000,"period":100000,"cpus":"0-1","mems":"0"},"pids":{"limit":100}}"#)
        let p = try SystemdProperties.from(r, unified: true, devices: false)
        #expect(p.map(\.name) == ["MemoryMax", "MemoryLow", "MemorySwapMax", "CPUWeight", "CPUQuotaPeriodUSec",
                                  "CPUQuotaPerSecUSec", "AllowedCPUs", "AllowedMemoryNodes", "TasksMax"])
        #expect(value(p, "MemoryMax") == .uint64(1_073_741_824))
        #expect(value(p, "MemorySwapMax") == .uint64(1_073_741_824))
        #expect(value(p, "CPUWeight") == .uint64(39))
        #expect(value(p, "CPUQuotaPerSecUSec") == .uint64(200_000))
        #expect(value(p, "AllowedCPUs") == .array("y", [.byte(3)]))
        #expect(value(p, "TasksMax") == .uint64(100))
        let unlimited = try SystemdProperties.from(try resources(#"{"memory":{"limit":-1},"pids":{"limit":-1}}"#), unified: true, devices: false)
        #expect(value(unlimited, "MemoryMax") == .uint64(.max) && value(unlimited, "TasksMax") == .uint64(.max))
        #expect(value(unlimited, "MemorySwapMax") == .uint64(.max))
        // v1 names; a swap limit without a memory limit fails as on the fs driver.
        let v1 = try SystemdProperties.from(try resources(#"{"memory":{"limit":100},"cpu":{"shares":512},"blockIO":{"weight":300}}"#), unified: false, devices: false)
        #expect(v1.map(\.name) == ["MemoryLimit", "CPUShares", "BlockIOWeight"])
        expectCgroupError("linux.resources.memory.swap") { _ = try SystemdProperties.from(try resources(#"{"memory":{"swap":100}}"#), unified: true, devices: false) }
        // unified keys systemd manages override the structured ones; others are left to the files.
        let u = try SystemdProperties.from(try resources(#"{"pids":{"limit":5},"unified":{"pids.max":"max","memory.high":"4096","cpu.max":"max 50000","io.weight":"7"}}"#), unified: true, devices: false)
        #expect(u.map(\.name) == ["CPUQuotaPeriodUSec", "CPUQuotaPerSecUSec", "MemoryHigh", "TasksMax"])
        #expect(value(u, "TasksMax") == .uint64(.max))
        #expect(value(u, "CPUQuotaPerSecUSec") == .uint64(.max))
    }

    @Test func devicesBecomeAStrictAllowList() throws {
        let groups: (DeviceRule.Kind, Int64) -> String? = { kind, major in kind == .char && major == 136 ? "pts" : nil }
        let r = try resources(#"{"devices":[{"allow":true,"type":"b","major":8,"minor":0,"access":"r"},{"allow":true,"type":"c","major":99,"access":"rw"}]}"#)
        let p = try SystemdProperties.from(r, unified: true, devices: true, deviceGroup: groups)
        #expect(value(p, "DevicePolicy") == .string("strict"))
        guard case let .array(sig, entries)? = value(p, "DeviceAllow") else { Issue.record("no DeviceAllow"); return }
        #expect(sig == "(ss)")
        let pairs = entries.compactMap { e -> String? in
            guard case let .structure(f) = e else { return nil }
            return "\(f[0].text!) \(f[1].text!)"
        }
        #expect(pairs.contains("/dev/block/8:0 r"))
        #expect(pairs.contains("char-* m") && pairs.contains("block-* m"))
        #expect(pairs.contains("/dev/char/1:3 rwm"))
        #expect(pairs.contains("char-pts rwm"))
        // 99:* has no /proc/devices name here: left to the eBPF program, not widened.
        #expect(!pairs.contains { $0.contains("99") })
        // An allow-all list cannot be a systemd allowlist.
        let all = try SystemdProperties.from(try resources(#"{"devices":[{"allow":true,"access":"rwm"}]}"#), unified: true, devices: true, deviceGroup: groups)
        #expect(all == [SystemdProperty("DevicePolicy", .string("auto"))])
    }

    @Test func procDevicesParse() {
        let t = "Character devices:\n  1 mem\n136 pts\n\nBlock devices:\n  8 sd\n"
        #expect(ProcDevices.parse(t)[.char]?[136] == "pts")
        #expect(ProcDevices.parse(t)[.block]?[8] == "sd")
        #expect(ProcDevices.parse(t)[.block]?[1] == nil)
    }
}

/// Records what the driver asks of systemd; "starting" a scope makes its directory, as systemd does.
final class FakeSystemd: SystemdClient {
    var calls: [String] = []
    var started: [String: [SystemdProperty]] = [:]
    var makeDirectory: (String) -> Void = { _ in }
    var refuse: DBusError?

    func startTransientUnit(_ name: String, properties: [SystemdProperty]) throws {
        calls.append("start \(name)")
        if let refuse { throw refuse }
        started[name] = properties
        makeDirectory(name)
    }
    func setUnitProperties(_ name: String, properties: [SystemdProperty]) throws {
        calls.append("set \(name) " + properties.map(\.name).joined(separator: ","))
    }
    func stopUnit(_ name: String) throws { calls.append("stop \(name)") }
    func resetFailedUnit(_ name: String) { calls.append("reset-failed \(name)") }
    func managerControlGroup() throws -> String { "/user.slice/user-1000.slice/user@1000.service" }
    var version = 252
    func managerVersion() throws -> Int { calls.append("version"); return version }
}

@Suite struct SystemdManagerTests {
    let fs = TempCgroupFS()
    let fake = FakeSystemd()

    func manager(_ path: String? = nil, user: Bool = false) throws -> SystemdManager {
        fs.touch("cgroup.controllers", "cpu memory pids")
        fs.touch("cgroup.subtree_control", "")
        let fs = self.fs
        fake.makeDirectory = { _ in
            for f in ["cgroup.procs", "memory.max", "pids.max", "cpu.weight", "cpu.max", "cgroup.controllers"] {
                fs.touch((user ? "user.slice/user-1000.slice/user@1000.service/user.slice" : "system.slice") + "/brig-c1.scope/" + f,
                         f == "cgroup.controllers" ? "cpu memory pids" : "")
            }
        }
        let fake = self.fake
        let m = try SystemdManager.make(cgroupsPath: path, containerID: "c1", user: user, layout: .unified(), root: fs.root,
                                        connect: { fake })
        m.skipDevices = true
        return m
    }

    @Test func createStartsTheScopeWithTheFirstProcessThenWritesTheFiles() throws {
        let m = try manager()
        #expect(m.state.systemd?.name == "brig-c1.scope")
        #expect(m.state.paths[""] == fs.root + "/system.slice/brig-c1.scope")
        #expect(try m.join() == false)
        try m.apply(try resources(#"{"memory":{"limit":4096},"pids":{"limit":10}}"#))
        #expect(fake.calls.isEmpty)  // nothing until there is a process
        try m.addProcess(777)
        #expect(fake.calls == ["start brig-c1.scope"])
        let p = fake.started["brig-c1.scope"] ?? []
        #expect(p.contains(SystemdProperty("PIDs", .array("u", [.uint32(777)]))))
        #expect(p.contains(SystemdProperty("MemoryMax", .uint64(4096))))
        #expect(p.contains(SystemdProperty("TasksMax", .uint64(10))))
        #expect(fs.read("system.slice/brig-c1.scope/memory.max") == "4096")
        #expect(fs.read("system.slice/brig-c1.scope/cgroup.procs") == "777")
        // Rebuilt from state.json: exec joins, update sets properties then files, delete stops.
        let json = try JSONEncoder().encode(m.state)
        let again = makeCgroupManager(state: try JSONDecoder().decode(CgroupState.self, from: json))
        #expect(again is SystemdManager)
        (again as! SystemdManager).client_ = fake
        try again.addProcess(888)
        #expect(fs.read("system.slice/brig-c1.scope/cgroup.procs") == "888")
        try again.update(try resources(#"{"pids":{"limit":20}}"#))
        #expect(fs.read("system.slice/brig-c1.scope/pids.max") == "20")
        try again.destroy()
        #expect(fake.calls == ["start brig-c1.scope", "set brig-c1.scope TasksMax", "stop brig-c1.scope", "reset-failed brig-c1.scope"])
    }

    @Test func aRefusedUnitIsAClearErrorAndStopsNothing() throws {
        let m = try manager("system.slice:brig:c1")
        try m.join()
        try m.apply(Resources())
        fake.refuse = .remote(call: "StartTransientUnit", name: "org.freedesktop.DBus.Error.InvalidArgs",
                              message: "Cannot set property AllowedCPUs, or unknown property.")
        do {
            try m.addProcess(5)
            Issue.record("expected a refusal")
        } catch {
            let text = "\(error)"
            #expect(text.contains("brig-c1.scope") && text.contains("AllowedCPUs") && text.contains("properties sent: Description"))
        }
        try m.destroy()
        #expect(fake.calls == ["start brig-c1.scope"])
    }

    @Test func rootlessUsesTheUserManagersCgroup() throws {
        let m = try manager(user: true)
        #expect(m.state.paths[""] == fs.root + "/user.slice/user-1000.slice/user@1000.service/user.slice/brig-c1.scope")
        #expect(m.state.systemd?.user == true)
    }

    @Test func noSystemdIsAClearError() {
        var unit = SystemdUnit(name: "brig-c1.scope", slice: "system.slice", user: false, containerID: "c1")
        unit.started = true
        let m = SystemdManager(unit: unit, fs: NoCgroupManager(mode: .unified), connect: {
            try SystemdDBusClient.connect(user: false, candidates: [DBusAddress(path: "/nonexistent/systemd/private", isBus: false)])
        })
        do {
            try m.destroy()
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains("/nonexistent/systemd/private: No such file or directory"))
            #expect("\(error)".contains("brig-c1.scope"))
        }
    }
}

@Suite struct DBusConnectionTests {
    /// A connection on one end of a socketpair; the test plays systemd on the other.
    func pair() throws -> (DBusConnection, Int32) {
        var fds: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        return (DBusConnection(fd: fds[0], address: DBusAddress(path: "test", isBus: false), timeout: 5), fds[1])
    }

    func send(_ fd: Int32, _ m: DBusMessage) throws {
        let b = try m.encode()
        #expect(b.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == b.count)
    }

    func readMessages(_ fd: Int32) throws -> [DBusMessage] {
        var buf = [UInt8](repeating: 0, count: 65536)
        let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        var bytes = Array(buf[0..<max(n, 0)])
        var out: [DBusMessage] = []
        while let total = try DBusMessage.length(ofMessageStartingWith: bytes[...]), bytes.count >= total {
            out.append(try DBusMessage.decode(Array(bytes[..<total])))
            bytes.removeFirst(total)
        }
        return out
    }

    @Test func aCallSkipsSignalsAnswersCallsToUsAndReturnsItsReply() throws {
        let (c, peer) = try pair()
        defer { close(peer) }
        // systemd's side, queued before the call: a signal, a polkit question, then the reply.
        var signal = DBusMessage(kind: .signal, serial: 1, path: "/org/freedesktop/systemd1", interface: SystemdDBusClient.manager,
                                 member: "JobRemoved", body: [.uint32(7), .objectPath("/job/7"), .string("u.scope"), .string("done")])
        signal.flags = 1
        try send(peer, signal)
        try send(peer, DBusMessage.call(serial: 2, destination: "org.freedesktop.PolicyKit1", path: "/org/freedesktop/PolicyKit1/Authority",
                                        interface: "org.freedesktop.PolicyKit1.Authority", member: "CheckAuthorization"))
        var reply = DBusMessage(kind: .methodReturn, serial: 3, body: [.objectPath("/job/7")])
        reply.replySerial = 1
        try send(peer, reply)
        let body = try c.call(destination: nil, path: "/org/freedesktop/systemd1", interface: SystemdDBusClient.manager,
                              member: "StopUnit", body: [.string("u.scope"), .string("replace")])
        #expect(body == [.objectPath("/job/7")])
        let sent = try readMessages(peer)
        #expect(sent.map(\.kind) == [.methodCall, .error])
        #expect(sent.first?.member == "StopUnit" && sent.first?.signature == "ss")
        #expect(sent.last?.replySerial == 2 && sent.last?.errorName == "org.freedesktop.DBus.Error.UnknownMethod")
        // The signal that came first is still there for the job wait.
        let job = try c.nextSignal(within: 1, what: "job") { $0.member == "JobRemoved" && $0.body[1] == .objectPath("/job/7") }
        #expect(job.body[3] == .string("done"))
    }

    /// BEGIN goes with AUTH, never in the same write as the first message (systemd 252 left
    /// such a message unread); a refusal names the socket and the reply.
    @Test func authenticationPipelinesBegin() throws {
        let (c, peer) = try pair()
        defer { close(peer) }
        _ = "OK 0123\r\n".withCString { write(peer, $0, 9) }
        try c.authenticate()
        var buf = [UInt8](repeating: 0, count: 256)
        let n = buf.withUnsafeMutableBytes { recv(peer, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        let uid = String(geteuid()).utf8.map { String($0, radix: 16) }.joined()
        #expect(Array(buf[0..<max(n, 0)]) == Array("\0AUTH EXTERNAL \(uid)\r\nBEGIN\r\n".utf8))
        let (c2, peer2) = try pair()
        defer { close(peer2) }
        _ = "REJECTED EXTERNAL\r\n".withCString { write(peer2, $0, 19) }
        #expect(throws: DBusError.auth(address: "test", reply: "REJECTED EXTERNAL")) { try c2.authenticate() }
    }

    @Test func errorsAndSilenceAreNamed() throws {
        let (c, peer) = try pair()
        var e = DBusMessage(kind: .error, serial: 1, body: [.string("Unit x.scope not loaded.")])
        e.errorName = "org.freedesktop.systemd1.NoSuchUnit"
        e.replySerial = 1
        try send(peer, e)
        #expect(throws: DBusError.remote(call: "StopUnit", name: "org.freedesktop.systemd1.NoSuchUnit", message: "Unit x.scope not loaded.")) {
            try c.call(destination: nil, path: "/", interface: "i.f", member: "StopUnit")
        }
        c.timeout = 0.2
        #expect(throws: DBusError.timeout(call: "Ping", seconds: 0.2)) { try c.call(destination: nil, path: "/", interface: "i.f", member: "Ping") }
        close(peer)
        #expect(throws: DBusError.self) { try c.call(destination: nil, path: "/", interface: "i.f", member: "Ping") }
    }
}
