import BrigSeccomp
import Testing

/// The ENOSYS stub and the whole exported program, checked with the BPF interpreter.
@Suite struct EnosysStubTests {
    static let x86_64: UInt32 = 0xC000_003E, i386: UInt32 = 0x4000_0003, aarch64: UInt32 = 0xC000_00B7
    static let x32Bit: UInt32 = 0x4000_0000
    static let allow = SeccompAction.allow.rawValue, eperm = SeccompAction.errno(1).rawValue
    static let enosys = SeccompAction.errno(38).rawValue

    func interpreter(_ json: String) throws -> BPFInterpreter {
        BPFInterpreter(try compile(json).exportBPF())
    }

    @Test func dockerShapedProfileAnswersENOSYSForNewerSyscallsOnEveryArch() throws {
        let bpf = try interpreter(DefaultProfileFixture.json)
        typealias Call = BPFInterpreter.Call
        // x86_64: known and allowed, known and denied, newer than anything in the profile.
        #expect(bpf.run(Call(arch: Self.x86_64, nr: 0)) == Self.allow)          // read
        #expect(bpf.run(Call(arch: Self.x86_64, nr: 246)) == Self.eperm)        // kexec_load
        #expect(bpf.run(Call(arch: Self.x86_64, nr: 435)) == Self.enosys)       // clone3: errnoRet 38
        #expect(bpf.run(Call(arch: Self.x86_64, nr: 470)) == Self.enosys)
        #expect(bpf.run(Call(arch: Self.x86_64, nr: 0xffff_ffff)) == Self.enosys)
        // i386 has its own numbering and maximum.
        #expect(bpf.run(Call(arch: Self.i386, nr: 3)) == Self.allow)            // read on i386
        #expect(bpf.run(Call(arch: Self.i386, nr: 283)) == Self.eperm)          // kexec_load on i386
        #expect(bpf.run(Call(arch: Self.i386, nr: 600)) == Self.enosys)
        // x32 reports AUDIT_ARCH_X86_64 with the x32 bit in the number.
        #expect(bpf.run(Call(arch: Self.x86_64, nr: Self.x32Bit | 0)) == Self.allow)
        #expect(bpf.run(Call(arch: Self.x86_64, nr: Self.x32Bit | 1000)) == Self.enosys)
        // Architectures outside the filter get libseccomp's bad-arch action (kill).
        #expect(bpf.run(Call(arch: Self.aarch64, nr: 0)) == SeccompAction.killThread.rawValue)
        // Argument conditions still apply behind the stub.
        #expect(bpf.run(Call(arch: Self.x86_64, nr: 135, args: [0xffff_ffff, 0, 0, 0, 0, 0])) == Self.allow)
        #expect(bpf.run(Call(arch: Self.x86_64, nr: 135, args: [1, 0, 0, 0, 0, 0])) == Self.eperm)
        #expect(bpf.run(Call(arch: Self.x86_64, nr: 56, args: [0x1000_0000, 0, 0, 0, 0, 0])) == Self.eperm)  // clone(CLONE_NEWUSER)
        #expect(bpf.run(Call(arch: Self.x86_64, nr: 56, args: [0x11, 0, 0, 0, 0, 0])) == Self.allow)
    }

    @Test func noStubForPermissiveOrENOSYSDefaults() throws {
        for defaultAction in [#""SCMP_ACT_ALLOW""#, #""SCMP_ACT_LOG""#, #""SCMP_ACT_ERRNO", "defaultErrnoRet": 38"#] {
            let json = #"{"defaultAction": \#(defaultAction), "syscalls": [{"names": ["read"], "action": "SCMP_ACT_KILL"}]}"#
            let bpf = try interpreter(json)
            #expect(bpf.run(.init(arch: Self.x86_64, nr: 0)) == 0, "read is killed")
            #expect(bpf.run(.init(arch: Self.x86_64, nr: 999)) == (try compile(json).defaultAction.rawValue),
                    "\(defaultAction): unknown syscalls get the default, not ENOSYS")
        }
    }

    @Test func stubCoversTheNativeArchitectureEvenWhenNotListed() throws {
        let bpf = try interpreter("""
            {"defaultAction": "SCMP_ACT_KILL_PROCESS", "architectures": ["SCMP_ARCH_X86"],
             "syscalls": [{"names": ["read", "uname"], "action": "SCMP_ACT_ALLOW"}]}
            """)
        #expect(bpf.run(.init(arch: Self.x86_64, nr: 63)) == Self.allow)         // uname
        #expect(bpf.run(.init(arch: Self.x86_64, nr: 62)) == SeccompAction.killProcess.rawValue)
        #expect(bpf.run(.init(arch: Self.x86_64, nr: 64)) == Self.enosys)
        #expect(bpf.run(.init(arch: Self.i386, nr: 122)) == Self.allow)          // uname on i386
        #expect(bpf.run(.init(arch: Self.i386, nr: 123)) == Self.enosys)
    }

    @Test func permissiveProfileArgumentSemantics() throws {
        let bpf = try interpreter("""
            {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO",
             "errnoRet": 7, "args": [{"index": 0, "value": 65280, "valueTwo": 2048, "op": "SCMP_CMP_MASKED_EQ"}]}]}
            """)
        #expect(bpf.run(.init(arch: Self.x86_64, nr: 135, args: [0x08ff, 0, 0, 0, 0, 0])) == SeccompAction.errno(7).rawValue)
        #expect(bpf.run(.init(arch: Self.x86_64, nr: 135, args: [0x0008, 0, 0, 0, 0, 0])) == Self.allow)
        #expect(bpf.run(.init(arch: Self.x86_64, nr: 999)) == Self.allow)
    }
}
