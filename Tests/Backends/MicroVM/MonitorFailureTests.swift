import BrigAgentProtocol
import BrigCore
import Testing
@testable import BrigMicroVM

/// What a VM's `create` says when it fails: a boot that never reached the agent is reported with
/// the guest console, a create the guest agent refused is reported as the guest's error (it once
/// read "the guest agent did not become ready" although the agent had answered).
@Suite struct MonitorFailureTests {
    final class Console {
        var reads = 0
        func tail() -> String { reads += 1; return "[ 1.0] Kernel panic - not syncing" }
    }

    @Test func aCreateTheGuestRefusedIsTheGuestsError() {
        let console = Console()
        // As the agent's answer reaches the monitor: an AgentError mapped by AgentSession.
        let guest = AgentSession.map(AgentError(.system, "process.args[0] /nope: executable not found in the container"))
        let m = MonitorRun.failureMessage(guest, booting: true, agentAnswered: true, vmStopped: false, console: console.tail)
        #expect(m == "process.args[0] /nope: executable not found in the container")
        #expect(!m.contains("did not become ready"))
        #expect(console.reads == 0)
    }

    @Test func aBootThatNeverReachedTheAgentKeepsTheConsole() {
        let console = Console()
        let e = RuntimeError(.system, "no agent answered within 30 s (12 attempts; last: vsock CONNECT 1024: no guest listener)")
        let m = MonitorRun.failureMessage(e, booting: true, agentAnswered: false, vmStopped: false, console: console.tail)
        #expect(m.hasPrefix("the guest agent did not become ready: no agent answered within 30 s"))
        #expect(m.hasSuffix("guest console: [ 1.0] Kernel panic - not syncing"))
    }

    @Test func aVMThatStoppedAfterTheAgentAnsweredKeepsTheConsole() {
        let console = Console()
        let e = RuntimeError(.system, "the VM stopped (reset): the agent connection closed")
        let m = MonitorRun.failureMessage(e, booting: true, agentAnswered: true, vmStopped: true, console: console.tail)
        #expect(m == "the VM stopped (reset): the agent connection closed; guest console: [ 1.0] Kernel panic - not syncing")
        #expect(!m.contains("did not become ready"))
    }

    @Test func errorsOutsideABootAreAsTheyCame() {
        let console = Console()
        // A config error before the agent answered (the monitor's own) and an exec's failure.
        let config = RuntimeError(.config, "process.terminal: needs a console socket")
        #expect(MonitorRun.failureMessage(config, booting: true, agentAnswered: false, vmStopped: false, console: console.tail)
            == config.message)
        let exec = RuntimeError(.system, "exec: container c1 is not running")
        #expect(MonitorRun.failureMessage(exec, booting: false, agentAnswered: true, vmStopped: false, console: console.tail)
            == exec.message)
        #expect(console.reads == 0)
    }
}
