import BrigCgroups
import Testing

@Suite struct DeviceTests {
    typealias R = DeviceRule

    func decide(_ prog: [BPFInstruction], _ kind: R.Kind, _ major: UInt32, _ minor: UInt32, _ access: R.Access) throws -> Bool {
        let type: UInt32 = kind == .block ? 1 : 2
        let r0 = try runDeviceProgram(prog, type: type, access: access.rawValue, major: major, minor: minor)
        #expect(r0 == 0 || r0 == 1)
        return r0 == 1
    }

    @Test func specRulesParseWithWildcards() throws {
        let r = try resources(#"{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":-1,"access":"rw"},{"allow":true,"type":"b","major":8,"minor":0}]}"#)
        let rules = try r.devices!.enumerated().map { try R($0.element, index: $0.offset) }
        #expect(rules.map(\.line) == ["a *:* rwm", "c 1:* rw", "b 8:0 rwm"])
        expectCgroupError("linux.resources.devices[0].access") {
            _ = try R(try resources(#"{"devices":[{"allow":true,"access":"rx"}]}"#).devices![0], index: 0)
        }
        expectCgroupError("linux.resources.devices[0].type") {
            _ = try R(try resources(#"{"devices":[{"allow":true,"type":"x"}]}"#).devices![0], index: 0)
        }
    }

    @Test func v1WritesDenyAllThenSpecRulesThenDefaults() throws {
        let fs = TempCgroupFS()
        let log = WriteLog()
        let d = CgroupDirectory(fs.cgroup("devices/c", ["devices.allow": "", "devices.deny": ""]).path, log: log)
        let spec = try resources(#"{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":10,"minor":229,"access":"rw"}]}"#)
        try V1Devices.apply(try R.effective(spec.devices!), d)
        #expect(log.values("devices.deny") == ["a *:* rwm"])
        #expect(log.writes.first?.file == "devices.deny")
        #expect(log.values("devices.allow") == ["c 10:229 rw", "c *:* m", "b *:* m", "c 1:3 rwm", "c 1:8 rwm", "c 1:7 rwm",
                                                "c 5:0 rwm", "c 1:5 rwm", "c 1:9 rwm", "c 5:1 rwm", "c 136:* rwm", "c 5:2 rwm", "c 10:200 rwm"])
    }

    @Test func v1TransitionsWriteOnlyTheDifference() throws {
        let fs = TempCgroupFS()
        let log = WriteLog()
        let d = CgroupDirectory(fs.cgroup("devices/c", ["devices.allow": "", "devices.deny": "",
                                                        "devices.list": "c 1:3 rwm\nc 10:229 rwm\nb *:* m\n"]).path, log: log)
        try V1Devices.apply([R(allow: false, .all, nil, nil), R(allow: true, .char, 1, 3), R(allow: true, .char, 10, 229, .read),
                             R(allow: true, .char, 5, 1)], d)
        #expect(log.writes.map { "\($0.file) \($0.value)" } == [
            "devices.allow c 5:1 rwm", "devices.deny c 10:229 wm", "devices.deny b *:* m"])
        // Already in the target state: nothing written.
        let log2 = WriteLog()
        fs.touch("devices/c/devices.list", "a *:* rwm\n")
        try V1Devices.apply([R(allow: true, .all, nil, nil)], CgroupDirectory(d.path, log: log2))
        #expect(log2.writes.isEmpty)
        // From allow-all to a deny-default list: reset first.
        try V1Devices.apply(try R.effective([]), CgroupDirectory(d.path, log: log2))
        #expect(log2.writes.first.map { "\($0.file) \($0.value)" } == "devices.deny a *:* rwm")
        #expect(throws: CgroupError.self) { try DeviceEmulator(devicesList: "x 1:3 rwm") }
    }

    @Test func defaultProgramDecisions() throws {
        let prog = try DeviceProgram.generate(try R.effective([]))
        #expect(try decide(prog, .char, 1, 3, [.read, .write]))         // /dev/null
        #expect(try decide(prog, .char, 1, 9, .read))                    // /dev/urandom
        #expect(try decide(prog, .char, 136, 7, [.read, .write]))       // a pty
        #expect(try decide(prog, .char, 5, 1, .write))                   // console
        #expect(try decide(prog, .char, 10, 200, .read))                 // tun
        #expect(try decide(prog, .block, 8, 0, .mknod))                  // mknod anything
        #expect(try !decide(prog, .block, 8, 0, .read))                  // but not use it
        #expect(try !decide(prog, .char, 10, 229, [.read, .write]))      // /dev/fuse not allowed
        #expect(try !decide(prog, .char, 1, 1, .read))                   // /dev/mem
    }

    @Test func partialAccessAndDenyRulesFollowV1Semantics() throws {
        let rules = try R.effective(try resources(#"""
            {"devices":[{"allow":true,"type":"c","major":10,"minor":229,"access":"r"},
                        {"allow":true,"type":"b","major":7,"minor":0,"access":"rwm"},{"allow":false,"type":"b","major":7,"minor":0,"access":"w"}]}
            """#).devices!)
        let prog = try DeviceProgram.generate(rules)
        #expect(try decide(prog, .char, 10, 229, .read))
        #expect(try !decide(prog, .char, 10, 229, [.read, .write]))      // requested more than allowed
        #expect(try decide(prog, .block, 7, 0, [.read, .mknod]))
        #expect(try !decide(prog, .block, 7, 0, .write))                 // w removed by the deny rule
    }

    @Test func blacklistProgram() throws {
        let rules = [R(allow: true, .all, nil, nil), R(allow: false, .char, 1, 3, .write), R(allow: false, .block, 8, nil)]
        let prog = try DeviceProgram.generate(rules)
        #expect(try decide(prog, .char, 1, 3, .read))
        #expect(try !decide(prog, .char, 1, 3, [.read, .write]))
        #expect(try !decide(prog, .block, 8, 5, .read))
        #expect(try decide(prog, .block, 9, 5, .read))
    }

    @Test func programAgreesWithTheEmulatorEverywhere() throws {
        let sets: [[R]] = [
            try R.effective([]),
            [R(allow: true, .all, nil, nil), R(allow: false, .char, nil, 3, [.read, .mknod])],
            [R(allow: false, .all, nil, nil), R(allow: true, .block, 8, nil, .read), R(allow: true, .block, 8, nil, .write),
             R(allow: true, .char, nil, 0, .mknod)],
        ]
        for rules in sets {
            let emu = try DeviceEmulator(rules)
            let prog = try DeviceProgram.generate(rules)
            for kind in [R.Kind.char, .block] {
                for major: UInt32 in [1, 5, 8, 10, 136] {
                    for minor: UInt32 in [0, 1, 3, 200] {
                        for a: UInt32 in 1...7 {
                            let access = R.Access(rawValue: a)
                            #expect(try decide(prog, kind, major, minor, access) == emu.allows(kind, Int64(major), Int64(minor), access),
                                    "\(kind) \(major):\(minor) \(access.letters) for \(rules)")
                        }
                    }
                }
            }
        }
    }

    @Test func holePunchingIntoAWildcardIsRefused() {
        expectCgroupError("linux.resources.devices", "punch a hole", "c 1:* rwm") {
            _ = try DeviceEmulator([R(allow: false, .all, nil, nil), R(allow: true, .char, 1, nil), R(allow: false, .char, 1, 3, .write)])
        }
    }

    @Test func instructionEncoding() {
        let i = BPFInstruction(BPFInstruction.jneImm, dst: 4, src: 0, offset: 3, imm: 136)
        #expect(i.bytes == [0x55, 0x04, 0x03, 0x00, 0x88, 0x00, 0x00, 0x00])
        let j = BPFInstruction(BPFInstruction.ldxMemW, dst: 2, src: 1, offset: 8)
        #expect(j.bytes == [0x61, 0x12, 0x08, 0x00, 0, 0, 0, 0])
        #expect(BPFInstruction(BPFInstruction.mov64Imm, imm: -1).bytes.suffix(4) == [0xff, 0xff, 0xff, 0xff])
    }
}
