import BrigOCI
import BrigSeccomp
import FoundationEssentials
import Testing

@Suite struct TranslationTests {
    @Test func dockerShapedDefaultProfile() throws {
        let profile = try compile(DefaultProfileFixture.json)
        #expect(profile.defaultAction == .errno(1))
        #expect(profile.architectures.map(\.name) == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        #expect(profile.flags == .specAllow, "no flags given: SPEC_ALLOW, as runc does")
        #expect(profile.rules.count > 300)
        // Skipped names are only ones newer than this libseccomp.
        #expect(Set(profile.skipped.map(\.name)).isSubset(of: DefaultProfileFixture.newerSyscalls))
        for skipped in profile.skipped { #expect(skipped.field.hasPrefix("linux.seccomp.syscalls[0].names[")) }

        let personality = profile.rules.filter { $0.name == "personality" }
        #expect(personality.map { $0.conditions.first?.value } == [0, 8, 131072, 131080, 4294967295])
        #expect(personality.allSatisfy { $0.action == .allow && $0.conditions.first?.op == .equal })

        let clone = try #require(profile.rules.first { $0.name == "clone" })
        #expect(clone.conditions == [SeccompCondition(index: 0, op: .maskedEqual, value: 2114060288, valueTwo: 0)])
        #expect(profile.rules.first { $0.name == "clone3" }?.action == .errno(38))
        #expect(profile.rules.first { $0.name == "socket" }?.conditions.first?.op == .notEqual)
        // Same action as the default: dropped, as runc does.
        #expect(!profile.rules.contains { $0.name == "ptrace" })
        #expect(!profile.usesNotify)

        let bpf = try profile.exportBPF()
        #expect(bpf.count > 8 * 100)
        #expect(bpf.count % 8 == 0)
    }

    @Test func architecturesMapToLibseccompTokens() throws {
        let expected: [String: UInt32] = [
            "SCMP_ARCH_X86_64": 0xC000_003E, "SCMP_ARCH_X86": 0x4000_0003, "SCMP_ARCH_X32": 0x4000_003E,
            "SCMP_ARCH_AARCH64": 0xC000_00B7, "SCMP_ARCH_ARM": 0x4000_0028, "SCMP_ARCH_RISCV64": 0xC000_00F3,
            "SCMP_ARCH_S390X": 0x8000_0016, "SCMP_ARCH_PPC64LE": 0xC000_0015, "SCMP_ARCH_MIPSEL64": 0xC000_0008,
        ]
        for (name, token) in expected {
            #expect(SeccompArchitectures.token(name) == token, "\(name)")
            if name == "SCMP_ARCH_S390X" { continue }  // big-endian: can't join an x86_64 filter
            let profile = try compile(#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["\#(name)"]}"#)
            #expect(profile.architectures == [SeccompArchitecture(name: name, token: token)])
        }
        #expect(SeccompArchitectures.native == 0xC000_003E)
        let mixed = try compileError(#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_S390X"]}"#)
        #expect(mixed?.field == "linux.seccomp.architectures[1]")
        #expect(mixed?.message.contains("byte order") == true)
        #expect(SeccompArchitectures.token("x86_64") == nil, "libseccomp names are not spec names")
        // Duplicates collapse.
        let twice = try compile(#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X86"]}"#)
        #expect(twice.architectures.count == 1)
    }

    @Test(arguments: [
        ("SCMP_ACT_ALLOW", nil, SeccompAction.allow, UInt32(0x7fff_0000)),
        ("SCMP_ACT_ERRNO", nil, .errno(1), 0x0005_0001),
        ("SCMP_ACT_ERRNO", 38, .errno(38), 0x0005_0026),
        ("SCMP_ACT_KILL", nil, .killThread, 0),
        ("SCMP_ACT_KILL_THREAD", nil, .killThread, 0),
        ("SCMP_ACT_KILL_PROCESS", nil, .killProcess, 0x8000_0000),
        ("SCMP_ACT_TRAP", nil, .trap, 0x0003_0000),
        ("SCMP_ACT_TRACE", nil, .trace(1), 0x7ff0_0001),
        ("SCMP_ACT_TRACE", 7, .trace(7), 0x7ff0_0007),
        ("SCMP_ACT_LOG", nil, .log, 0x7ffc_0000),
        ("SCMP_ACT_NOTIFY", nil, .notify, 0x7fc0_0000),
    ] as [(String, UInt32?, SeccompAction, UInt32)])
    func actions(name: String, errnoRet: UInt32?, action: SeccompAction, raw: UInt32) throws {
        let errno = errnoRet.map { #", "errnoRet": \#($0)"# } ?? ""
        let profile = try compile("""
            {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 99, "listenerPath": "/run/agent.sock",
             "syscalls": [{"names": ["getcwd"], "action": "\(name)"\(errno)}]}
            """)
        let rule = try #require(profile.rules.first)
        #expect(rule.action == action)
        #expect(rule.action.rawValue == raw)
        #expect(rule.syscall == 79, "getcwd on x86_64")
        #expect(profile.usesNotify == (action == .notify))
    }

    @Test func everyOperatorAndArgumentFields() throws {
        for op in SeccompOperator.allCases {
            let profile = try compile("""
                {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                 "args": [{"index": 0, "value": 255, "valueTwo": 8, "op": "\(op.specName)"}]}]}
                """)
            #expect(profile.rules.first?.conditions == [SeccompCondition(index: 0, op: op, value: 255, valueTwo: 8)])
            #expect(SeccompOperator(specName: op.specName) == op)
        }
        #expect(SeccompOperator.maskedEqual.rawValue == 7 && SeccompOperator.notEqual.rawValue == 1)
    }

    @Test func distinctIndicesAreOneRuleRepeatedIndexSplitsIntoOredRules() throws {
        let anded = try compile("""
            {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["socket"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 2, "op": "SCMP_CMP_EQ"}]}]}
            """)
        #expect(anded.rules.count == 1)
        #expect(anded.rules[0].conditions.map(\.index) == [0, 1])

        let ored = try compile("""
            {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["socket", "personality"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"},
                      {"index": 2, "value": 3, "op": "SCMP_CMP_GT"}]}]}
            """)
        #expect(ored.rules.count == 6)
        #expect(ored.rules.allSatisfy { $0.conditions.count == 1 })
        #expect(ored.rules.map(\.name) == ["socket", "socket", "socket", "personality", "personality", "personality"])
    }

    @Test func flags() throws {
        let none = try compile(#"{"defaultAction": "SCMP_ACT_ALLOW", "flags": []}"#)
        #expect(none.flags == [])
        let all = try compile("""
            {"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
             "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}
            """)
        #expect(all.flags == [.tsync, .log, .specAllow, .waitKillableRecv])
        #expect(all.flags.rawValue == 0b10_0111, "the kernel's SECCOMP_FILTER_FLAG_* bits")
    }

    @Test func unknownSyscallNamesAreSkippedAndReported() throws {
        let profile = try compile("""
            {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
              {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"},
              {"names": ["mkdir", "brig_no_such_syscall", "uname"], "action": "SCMP_ACT_KILL"}]}
            """)
        #expect(profile.skipped == [SkippedSyscall(name: "brig_no_such_syscall", field: "linux.seccomp.syscalls[1].names[1]")])
        #expect(profile.rules.map(\.name) == ["getcwd", "mkdir", "uname"])
        #expect(resolveSyscall("brig_no_such_syscall") == nil)
        #expect(resolveSyscall("read") == 0)
    }

    @Test func listenerFieldsAndCodableRoundTrip() throws {
        let profile = try compile("""
            {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock", "listenerMetadata": "m=1",
             "flags": ["SECCOMP_FILTER_FLAG_LOG"],
             "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"},
                          {"names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5}]}
            """)
        #expect(profile.listenerPath == "/run/agent.sock")
        #expect(profile.listenerMetadata == "m=1")
        #expect(profile.usesNotify)
        let data = try JSONEncoder().encode(profile)
        #expect(try JSONDecoder().decode(CompiledProfile.self, from: data) == profile)
        // An empty listenerPath counts as unset, as in runc.
        #expect(try compile(#"{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": ""}"#).listenerPath == nil)
    }
}

@Suite struct FeaturesTests {
    @Test func featuresListWhatCompileAccepts() throws {
        let features = SeccompFeatures.current()
        #expect(features.enabled)
        #expect(features.actions.count == 9 && features.operators.count == 7)
        #expect(features.archs.contains("SCMP_ARCH_X86_64") && features.archs.contains("SCMP_ARCH_AARCH64"))
        #expect(features.knownFlags.count == 4)
        // Kernel 5.19+ (this one is newer) takes all four.
        #expect(features.supportedFlags == features.knownFlags)
        for arch in features.archs {
            #expect(SeccompArchitectures.token(arch) != nil, "\(arch)")
        }
        let flags = features.supportedFlags.map { "\"\($0)\"" }.joined(separator: ",")
        let profile = try compile(#"{"defaultAction": "SCMP_ACT_ALLOW", "flags": [\#(flags)]}"#)
        #expect(profile.flags.rawValue == 0b10_0111)
    }
}
