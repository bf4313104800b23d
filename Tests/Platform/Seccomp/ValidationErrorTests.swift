import BrigOCI
import BrigSeccomp
import Testing

/// Every way `linux.seccomp` can be wrong, with the field the error must name.
@Suite struct ValidationErrorTests {
    static let allow = #""defaultAction": "SCMP_ACT_ALLOW""#

    static func syscalls(_ entries: String) -> String { "{\(allow), \"syscalls\": [\(entries)]}" }

    static let cases: [(json: String, field: String, message: String)] = [
        (#"{"defaultAction": "SCMP_ACT_MAYBE"}"#, "linux.seccomp.defaultAction", "unknown action"),
        (#"{"defaultAction": ""}"#, "linux.seccomp.defaultAction", "required"),
        (#"{"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/a"}"#, "linux.seccomp.defaultAction", "default action"),
        (#"{"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1}"#, "linux.seccomp.defaultErrnoRet", "only SCMP_ACT_ERRNO"),
        (#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000}"#, "linux.seccomp.defaultErrnoRet", "16-bit"),
        ("{\(allow), \"architectures\": [\"SCMP_ARCH_X86\", \"SCMP_ARCH_Z80\"]}", "linux.seccomp.architectures[1]", "unknown architecture"),
        ("{\(allow), \"architectures\": [\"x86_64\"]}", "linux.seccomp.architectures[0]", "unknown architecture"),
        ("{\(allow), \"flags\": [\"SECCOMP_FILTER_FLAG_NEW_LISTENER\"]}", "linux.seccomp.flags[0]", "unknown seccomp flag"),
        ("{\(allow), \"listenerPath\": \"run/agent.sock\"}", "linux.seccomp.listenerPath", "absolute"),
        ("{\(allow), \"listenerPath\": \"/\(String(repeating: "x", count: 120))\"}", "linux.seccomp.listenerPath", "107 bytes"),
        (syscalls(#"{"names": ["read"], "action": "SCMP_ACT_ERRNO"}, {"names": ["a"], "action": "SCMP_ACT_ERRNO"}, {"names": ["b"], "action": "SCMP_ACT_KILL"}, {"names": ["c"], "action": "SCMP_ACT_DENY"}"#),
         "linux.seccomp.syscalls[3].action", "unknown action"),
        (syscalls(#"{"names": ["read"], "action": ""}"#), "linux.seccomp.syscalls[0].action", "required"),
        (syscalls(#"{"names": ["read"], "action": "SCMP_ACT_KILL", "errnoRet": 1}"#), "linux.seccomp.syscalls[0].errnoRet", "only SCMP_ACT_ERRNO"),
        (syscalls(#"{"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 65536}"#), "linux.seccomp.syscalls[0].errnoRet", "16-bit"),
        (syscalls(#"{"names": [], "action": "SCMP_ACT_ERRNO"}"#), "linux.seccomp.syscalls[0].names", "at least one"),
        (syscalls(#"{"names": ["read", ""], "action": "SCMP_ACT_ERRNO"}"#), "linux.seccomp.syscalls[0].names[1]", "empty"),
        (syscalls(#"{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [\#(String(repeating: #"{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},"#, count: 6)) {"index": 1, "value": 1, "op": "SCMP_CMP_EQ"}]}"#),
         "linux.seccomp.syscalls[0].args", "at most 6"),
        (syscalls(#"{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}"#),
         "linux.seccomp.syscalls[0].args[2].index", "out of range"),
        (syscalls(#"{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 18446744073709551615, "value": 1, "op": "SCMP_CMP_EQ"}]}"#),
         "linux.seccomp.syscalls[0].args[0].index", "out of range"),
        (syscalls(#"{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_APPROX"}]}"#),
         "linux.seccomp.syscalls[0].args[0].op", "unknown operator"),
        (syscalls(#"{"names": ["read"], "action": "SCMP_ACT_ERRNO"}, {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}"#),
         "linux.seccomp.listenerPath", "syscalls[1] uses SCMP_ACT_NOTIFY"),
        (syscalls(#"{"names": ["brig_no_such_syscall"], "action": "SCMP_ACT_NOTIFY"}"#),
         "linux.seccomp.listenerPath", "syscalls[0] uses SCMP_ACT_NOTIFY"),
        ("{\(allow), \"listenerPath\": \"/a.sock\", \"syscalls\": [{\"names\": [\"read\", \"write\"], \"action\": \"SCMP_ACT_NOTIFY\"}]}",
         "linux.seccomp.syscalls[0].names[1]", "write syscall"),
        ("{\(allow), \"listenerPath\": \"/a.sock\", \"syscalls\": [{\"names\": [\"sendmsg\"], \"action\": \"SCMP_ACT_NOTIFY\"}]}",
         "linux.seccomp.syscalls[0].names[0]", "sendmsg syscall"),
    ]

    @Test(arguments: cases)
    func badInputNamesTheField(json: String, field: String, message: String) throws {
        let error = try #require(try compileError(json), "expected \(field) to be rejected")
        #expect(error.field == field)
        #expect(error.message.contains(message), "message: \(error.message)")
        #expect(error.description.hasPrefix("\(field): "))
    }

    @Test func filterTooBigForTheKernel() throws {
        // Distinct actions and 64-bit values so libseccomp can't merge the rules.
        let entries = (0..<1000).map { i in
            #"{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": \#(i % 200 + 1), "args": ["#
                + #"{"index": 0, "value": \#(i << 32 | i), "op": "SCMP_CMP_EQ"}, {"index": 1, "value": \#(i), "op": "SCMP_CMP_GT"}]}"#
        }
        let error = try compileError(Self.syscalls(entries.joined(separator: ",")))
        #expect(error?.field == "linux.seccomp.syscalls")
        #expect(error?.message.contains("at most 4096") == true, "\(String(describing: error))")
    }

    @Test func unknownActionOnAnUnknownSyscallIsStillAnError() throws {
        // Validation does not depend on the name resolving: runc checks actions first too.
        let error = try compileError(Self.syscalls(#"{"names": ["brig_no_such_syscall"], "action": "SCMP_ACT_NOPE"}"#))
        #expect(error?.field == "linux.seccomp.syscalls[0].action")
    }

    @Test func messagesQuoteHostileInputSafely() throws {
        let error = try compileError(#"{"defaultAction": "SCMP\n\u0000ACT_\#(String(repeating: "Z", count: 200))"}"#)
        let message = try #require(error?.message)
        #expect(!message.contains("\n"))
        #expect(message.count < 400)
    }
}
