import BrigAgentProtocol
import BrigCore
import BrigLinux
import Glibc
import Testing
@testable import BrigMicroVM

/// A request that ends the container (a fatal signal, starting a process that exits at once)
/// can lose its reply when the monitor stops the VM on the exit event: success only when the
/// connection was lost and the monitor is gone; anything else stays an error.
@Suite struct LostReplyTests {
    /// A record whose "monitor" is `pid` with its real start time.
    func record(_ pid: pid_t) -> ContainerRecord {
        ContainerRecord(id: "c", handle: .microvm(MicroVMHandle(mode: "kvm", stateDir: "/nonexistent", guestPid: 1)),
                        bundle: "/b", rootfs: "/b/rootfs", pid: pid, pidStartTime: ProcStat.read(pid: pid)?.startTime ?? 0,
                        created: Timestamp.now(), owner: "", annotations: nil, hooks: nil)
    }

    /// A child sleeping `seconds` (the caller reaps it).
    func child(sleeping seconds: String) throws -> pid_t {
        try Spawn.spawn(Spawn.Options(path: "/bin/sleep", args: ["sleep", seconds], env: []))
    }

    let lost = AgentError(.connection, "agent connection closed")

    @Test func aLostReplyWithTheMonitorGoneIsSuccess() throws {
        let pid = try child(sleeping: "0.2")
        defer { _ = try? Spawn.wait(pid) }
        // The "monitor" exits while the caller waits (a zombie counts as gone).
        try MicroVMBackend.mayEndContainer(record(pid), grace: 10) { () throws(AgentError) in throw lost }
    }

    @Test func aLostReplyWithTheMonitorStillRunningIsAnError() throws {
        let pid = try child(sleeping: "30")
        defer { kill(pid, SIGKILL); _ = try? Spawn.wait(pid) }
        #expect(throws: RuntimeError.self) {
            try MicroVMBackend.mayEndContainer(record(pid), grace: 0.1) { () throws(AgentError) in throw lost }
        }
    }

    @Test func theAgentsOwnRefusalStaysAnErrorEvenWhenTheMonitorIsGone() throws {
        let pid = try child(sleeping: "0")
        let r = record(pid)
        _ = try Spawn.wait(pid)
        let e = try #require(throws: RuntimeError.self) {
            try MicroVMBackend.mayEndContainer(r, grace: 0.1) { () throws(AgentError) in
                throw AgentError(.invalidState, "container c is not running")
            }
        }
        #expect(e.message == "container c is not running")
    }

    @Test func aReplyThatArrivesIsSuccess() throws {
        try MicroVMBackend.mayEndContainer(record(getpid()), grace: 0) { () throws(AgentError) in }
    }
}
