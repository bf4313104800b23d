import BrigSeccomp
import Glibc
import Testing

/// Loads real filters into the kernel, in a spawned `brig-seccomp-probe`, and checks what a
/// syscall does under them. Needs root (or CAP_SYS_ADMIN): the probe doesn't set no_new_privs.
@Suite struct KernelTests {
    static func allow(_ syscalls: String, extra: String = "") -> String {
        #"{"defaultAction": "SCMP_ACT_ALLOW"\#(extra), "syscalls": [\#(syscalls)]}"#
    }

    /// Runs the probe and checks it printed `expected` (e.g. `errno 13`) and exited 0.
    func expectProbe(_ profile: String, _ arguments: [String], prints expected: String,
                     sourceLocation: SourceLocation = #_sourceLocation) {
        guard let result = runProbe(profile: profile, arguments) else { return }
        #expect(result.exitCode == 0, "probe failed: \(result.stderr)", sourceLocation: sourceLocation)
        #expect(result.stdout == expected + "\n", "probe \(arguments): \(result.stderr)", sourceLocation: sourceLocation)
    }

    /// Runs the probe and checks it was killed by SIGSYS.
    func expectSIGSYS(_ profile: String, _ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        guard let result = runProbe(profile: profile, arguments) else { return }
        #expect(result.signal == SIGSYS, "exit \(String(describing: result.exitCode)) stdout \(result.stdout) stderr \(result.stderr)",
                sourceLocation: sourceLocation)
        #expect(result.stdout.isEmpty, sourceLocation: sourceLocation)
    }

    @Test func deniedSyscallReturnsTheConfiguredErrno() {
        let dir = makeTempDir()
        defer { removeTree(dir) }
        let profile = Self.allow(#"{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},"#
                                 + #"{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}"#)
        expectProbe(profile, ["mkdir", "s:\(dir)/made", "493"], prints: "errno 13")
        #expect(access("\(dir)/made", F_OK) != 0, "mkdir must not have happened")
        expectProbe(profile, ["getcwd", "0", "0"], prints: "errno 1")  // EPERM by default
        expectProbe(profile, ["getppid"], prints: "ok \(getpid())")
    }

    @Test func killActionsRaiseSIGSYS() {
        expectSIGSYS(Self.allow(#"{"names": ["getcwd"], "action": "SCMP_ACT_KILL"}"#), ["getcwd", "0", "0"])
        expectSIGSYS(Self.allow(#"{"names": ["getcwd"], "action": "SCMP_ACT_KILL_THREAD"}"#), ["getcwd", "0", "0"])
        expectSIGSYS(Self.allow(#"{"names": ["uname"], "action": "SCMP_ACT_KILL_PROCESS"}"#), ["uname", "0"])
        expectSIGSYS(Self.allow(#"{"names": ["uname"], "action": "SCMP_ACT_TRAP"}"#), ["uname", "0"])
    }

    @Test func argumentConditions() {
        let profile = Self.allow(#"{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22, "#
                                 + #""args": [{"index": 0, "value": 4294967295, "op": "SCMP_CMP_EQ"}]}"#)
        expectProbe(profile, ["personality", "0xffffffff"], prints: "errno 22")
        expectProbe(profile, ["personality", "0"], prints: "ok 0")
    }

    @Test func repeatedIndexConditionsAreOred() {
        let profile = Self.allow(#"{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 33, "args": ["#
                                 + #"{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 131072, "op": "SCMP_CMP_EQ"}]}"#)
        expectProbe(profile, ["personality", "8"], prints: "errno 33")
        expectProbe(profile, ["personality", "131072"], prints: "errno 33")
        expectProbe(profile, ["personality", "0"], prints: "ok 0")
    }

    @Test func maskedEqualAndRangeOperators() {
        let masked = Self.allow(#"{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 7, "#
                                + #""args": [{"index": 0, "value": 65280, "valueTwo": 2048, "op": "SCMP_CMP_MASKED_EQ"}]}"#)
        expectProbe(masked, ["personality", "0x0800"], prints: "errno 7")
        expectProbe(masked, ["personality", "0x08ff"], prints: "errno 7")
        expectProbe(masked, ["personality", "0x0008"], prints: "ok 0")
        let range = Self.allow(#"{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 9, "#
                               + #""args": [{"index": 1, "value": 10, "op": "SCMP_CMP_LT"}, {"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]}"#)
        expectProbe(range, ["getcwd", "0", "5"], prints: "errno 9")
        expectProbe(range, ["getcwd", "0", "0"], prints: "errno 9")
        expectProbe(range, ["getcwd", "0", "4096"], prints: "errno 14")  // allowed: EFAULT from the NULL buffer
    }

    @Test func dockerShapedAllowlistOnTheRealKernel() {
        let profile = DefaultProfileFixture.json
        expectProbe(profile, ["getppid"], prints: "ok \(getpid())")
        expectProbe(profile, ["clone3", "0", "0"], prints: "errno 38")
        expectProbe(profile, ["kexec_load", "0", "0", "0", "0"], prints: "errno 1")
        expectProbe(profile, ["personality", "0xffffffff"], prints: "ok 0")
        expectProbe(profile, ["personality", "1"], prints: "errno 1")
        expectProbe(profile, ["socket", "40", "1", "0"], prints: "errno 1")  // AF_VSOCK is not allowed
        // The ENOSYS stub: syscalls newer than any in the profile say "not implemented".
        expectProbe(profile, ["470", "0", "0"], prints: "errno 38")
        expectProbe(profile, ["100000"], prints: "errno 38")
    }

    @Test func flagsAndExtraArchitecturesLoad() {
        let extra = #", "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"], "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]"#
        let profile = Self.allow(#"{"names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5}"#, extra: extra)
        expectProbe(profile, ["uname", "0"], prints: "errno 5")
        expectProbe(Self.allow(#"{"names": ["uname"], "action": "SCMP_ACT_LOG"}"#), ["uname", "0"], prints: "errno 14")
    }
}
