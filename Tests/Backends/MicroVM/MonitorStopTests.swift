import BrigAgentProtocol
import BrigCore
import BrigLinux
import BrigOCI
import BrigVMM
import Glibc
import Testing
@testable import BrigMicroVM

/// A VM that stops closes its agent connection before the monitor learns why: the VMM records
/// the stop when it is requested, its vsock device closes every host connection as `run()`
/// returns, and only then (vsock and net threads joined) does the VM thread set `phase.stopped`.
/// A monitor that reads the EOF in between must report the VM's stop, not a broken connection
/// ("agent connection closed" during create, "the agent connection broke" after start).
@Suite struct MonitorStopTests {
    let dir: String
    let run: MonitorRun

    init() throws {
        var t = Array("/tmp/brig-monitor-XXXXXX".utf8CString)
        #expect(mkdtemp(&t) != nil)
        dir = t.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        let config = MonitorConfig(id: "c1", stateDir: dir, mode: .kvm, role: .container(spec: Spec(), rootfs: "/r"),
                                   endpoint: .unix(path: dir + "/agent.sock"), terminal: false, consoleSocket: nil,
                                   consoleOnFD4: false, plan: nil, diskImage: nil, agentExecutable: nil)
        run = MonitorRun(config: config, signals: sigset_t())
        try Files.write(dir + "/console.log", "[ 2.0] Kernel panic - not syncing", flags: O_WRONLY | O_CREAT | O_TRUNC)
    }

    func cleanUp() { Files.removeAll(dir) }

    var monitorExit: String { (try? Files.readString(dir + "/monitor.exit")) ?? "" }
    static let closed = AgentSession.map(AgentError(.connection, "agent connection closed"))

    @Test func anEOFWhileTheVMStopsDuringCreateIsTheVMsStop() {
        defer { cleanUp() }
        run.agentAnswered = true
        run.vmStop = { .tripleFault } // the VMM's record; phase.stopped is still nil
        let line = run.bootFailure(Self.closed)
        #expect(line.hasPrefix("error [system] the VM stopped (guest triple-faulted (KVM_EXIT_SHUTDOWN)): agent connection closed"))
        #expect(line.hasSuffix("guest console: [ 2.0] Kernel panic - not syncing"))
    }

    @Test func anEOFWhileTheVMStopsAfterStartIsTheVMsStop() {
        defer { cleanUp() }
        run.vmStop = { .tripleFault }
        let closed = RuntimeError(.system, "agent connection closed before the process exited")
        #expect(run.relayEnded(.failure(closed)) == 137)
        #expect(monitorExit.hasPrefix("the VM stopped: guest triple-faulted"))
    }

    /// With the VM running, a broken connection and an exit are what they say.
    @Test func withTheVMRunningTheRelaysEndIsTheConnectionsOrTheContainers() {
        defer { cleanUp() }
        let closed = RuntimeError(.system, "agent connection closed before the process exited")
        #expect(run.relayEnded(.failure(closed)) == 255)
        #expect(monitorExit == "the agent connection broke: agent connection closed before the process exited\n")
        #expect(run.relayEnded(.success(3)) == 3 && monitorExit == "the container exited: status 3\n")
        run.agentAnswered = true
        #expect(run.bootFailure(Self.closed) == "error [system] agent connection closed")
    }
}
