import BrigAgentProtocol
import BrigCore
import BrigOCI

/// The backend's view of one agent connection: AgentClient with errors as RuntimeErrors.
struct AgentSession {
    let client: AgentClient

    /// Takes `fd` (closed with the session, or on a failed handshake).
    init(fd: Int32, helloTimeout: Double? = nil) throws(AgentError) {
        guard fd >= 0 else { throw AgentError(.connection, "no connection to the agent") }
        client = try AgentClient(fd: fd, helloTimeout: helloTimeout)
    }

    /// Creates the container or starts the exec'd process the monitor stands for. `hostHooks`
    /// runs the config's prestart/createRuntime/createContainer hooks on the host when the agent
    /// says the container's namespaces exist; nil or a failure message.
    func begin(_ c: MonitorConfig, hostHooks: @escaping (Int32) -> String?) throws(RuntimeError) -> Int32 {
        do {
            switch c.role {
            case .container(var spec, let rootfs):
                // Every hook whose path resolves on the host runs there, as Kata places them:
                // prestart, createRuntime and createContainer (a VM's container namespace has
                // nothing of the host's), poststart and poststop. startContainer, whose path
                // resolves in the container, stays with the guest runtime.
                let h = spec.hooks
                let runtimeHooks = [h?.prestart, h?.createRuntime, h?.createContainer].contains { !($0 ?? []).isEmpty }
                spec.hooks?.prestart = nil; spec.hooks?.createRuntime = nil; spec.hooks?.createContainer = nil
                spec.hooks?.poststart = nil; spec.hooks?.poststop = nil
                // The guest's interface as the engine's namespace has it, before the container exists.
                if c.mode == .kvm, let network = c.plan?.network { try client.configureNetwork(network.agentNetwork) }
                let source: AgentRootfs = c.mode == .kvm
                    ? .block(device: MonitorConfig.guestRootDevice, fstype: "ext4") : .path(rootfs)
                return try client.create(AgentCreate(id: c.id, spec: spec, rootfs: source, terminal: c.terminal,
                                                     hostHooks: runtimeHooks ? true : nil, bundle: c.bundle),
                                         onHooks: { hostHooks($0.pid) })
            case let .exec(process, execID):
                return try client.exec(id: c.id, execID: execID, process: process, subCgroups: c.subCgroups)
            }
        } catch { throw Self.map(error) }
    }

    func relay(stdin: Int32, stdout: Int32, stderr: Int32) throws(RuntimeError) -> Int32 {
        do { return try client.relay(stdin: stdin, stdout: stdout, stderr: stderr) } catch { throw Self.map(error) }
    }
    func resize(id: String, execID: String?, rows: UInt16, cols: UInt16) throws(RuntimeError) {
        do { try client.resize(id: id, execID: execID, rows: rows, cols: cols) } catch { throw Self.map(error) }
    }
    func ps(id: String) throws(RuntimeError) -> [Int32] {
        do { return try client.ps(id: id) } catch { throw Self.map(error) }
    }
    func stats(id: String) throws(RuntimeError) -> AgentStats {
        do { return try client.stats(id: id) } catch { throw Self.map(error) }
    }
    func delete(id: String, force: Bool) throws(RuntimeError) {
        do { try client.delete(id: id, force: force) } catch { throw Self.map(error) }
    }

    static func map(_ error: AgentError) -> RuntimeError { RuntimeError(error.kind, error.message) }

    /// Kind names for the monitor's one-line report.
    static func kindName(_ k: RuntimeError.Kind) -> String { "\(k)" }
    static func kind(_ name: String) -> RuntimeError.Kind {
        let all: [RuntimeError.Kind] = [.notFound, .exists, .invalidState, .config, .system, .hook, .usage, .unsupported, .internalError]
        return all.first { "\($0)" == name } ?? .system
    }
}
