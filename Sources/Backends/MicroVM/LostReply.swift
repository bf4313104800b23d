import BrigAgentProtocol
import BrigCore
import BrigLinux
import Glibc

extension MicroVMBackend {
    /// Seconds a monitor that lost its agent connection may take to exit (a nested, busy host).
    static let exitGrace: Double = 10

    /// A request whose effect can end the container (a fatal signal; starting a process that
    /// exits at once): the monitor stops the VM on the exit event, possibly before the agent's
    /// reply has left the guest. A reply lost that way — the connection gone, then the monitor
    /// gone within `exitGrace` — means the request took effect (runc reports success too).
    static func mayEndContainer(_ record: ContainerRecord, grace: Double = exitGrace,
                                _ request: () throws(AgentError) -> Void) throws(RuntimeError) {
        do { try request() } catch {
            if error.code == .connection && monitorExits(record, within: grace) { return }
            throw AgentSession.map(error)
        }
    }

    /// Whether the container's monitor is gone, or goes within `seconds`.
    static func monitorExits(_ record: ContainerRecord, within seconds: Double) -> Bool {
        let deadline = monotonicSeconds() + seconds
        while monitorAlive(record) {
            if monotonicSeconds() >= deadline { return false }
            usleep(10_000)
        }
        return true
    }
}
