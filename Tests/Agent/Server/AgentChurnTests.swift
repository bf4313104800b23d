import BrigAgentProtocol
import BrigLinux
import Glibc
import Testing

/// brig-agent is the long-lived caller of the namespaces backend (it runs it in-process for
/// every container of a VM): BRIG_CHURN lifecycles (default 100) through one agent must not
/// grow its open fds at all, nor its memory beyond a small allowance.
@Suite(.serialized, .enabled(if: AgentProcess.isRoot, "runs containers: needs root"))
struct AgentChurnTests {
    /// The agent under `timeout`: the child of that pid.
    static func agentPid(_ timeoutPid: pid_t) -> pid_t? {
        let children = (try? Files.readString("/proc/\(timeoutPid)/task/\(timeoutPid)/children")) ?? ""
        return children.split(separator: " ").first.flatMap { pid_t($0) }
    }

    static func usage(_ pid: pid_t) -> (fds: Int, rssKiB: Int) {
        let status = (try? Files.readString("/proc/\(pid)/status")) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        let rss = Int(line.split(separator: " ").dropFirst().first ?? "") ?? -1
        return (((try? Files.list("/proc/\(pid)/fd")) ?? []).count, rss)
    }

    @Test func lifecyclesDoNotGrowTheAgent() throws {
        let n = getenv("BRIG_CHURN").flatMap { Int(String(cString: $0)) } ?? 100
        let agent = try AgentProcess(timeout: 60 + n / 2)
        let c = try agent.connect()
        func lifecycle(_ i: Int) throws {
            let id = "churn\(i)"
            _ = try agent.create(c, id, ["sleep", "1000"])
            try c.start(id: id)
            try c.kill(id: id, execID: nil, signal: SIGKILL, all: false)
            _ = try c.wait(id: id, execID: nil)
            try c.delete(id: id, force: false)
        }
        for i in 0..<10 { try lifecycle(i) }  // warm-up: caches, arenas
        guard let pid = Self.agentPid(agent.pid) else { Issue.record("no agent process"); return }
        let before = Self.usage(pid)
        let t0 = monotonicSeconds()
        for i in 10..<(10 + n) { try lifecycle(i) }
        let elapsed = monotonicSeconds() - t0
        let after = Self.usage(pid)
        print("agent churn: \(n) lifecycles in \(Int(elapsed * 1000)) ms; fds \(before.fds) -> \(after.fds), RSS \(before.rssKiB) -> \(after.rssKiB) KiB")
        #expect(after.fds == before.fds, "the agent's fds grew: \(before.fds) -> \(after.fds)")
        #expect(after.rssKiB - before.rssKiB < 4096, "the agent's RSS grew \(before.rssKiB) -> \(after.rssKiB) KiB")
        #expect(((try? Files.list(agent.dir + "/state/state")) ?? []).isEmpty)
    }
}
