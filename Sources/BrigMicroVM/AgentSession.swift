import BrigAgentProtocol
import BrigCore
import BrigOCI

/// The backend's view of one agent connection: AgentClient with errors as RuntimeErrors.
struct AgentSession {
    let client: AgentClient

    init(fd: Int32) throws(RuntimeError) {
        guard fd >= 0 else { throw RuntimeError(.system, "no connection to the agent") }
        do { client = try AgentClient(fd: fd) } catch { throw Self.map(error) }
    }

    /// Creates the container or starts the exec'd process the monitor stands for.
    func begin(_ c: MonitorConfig) throws(RuntimeError) -> Int32 {
        do {
            switch c.role {
            case .container(var spec, let rootfs):
                // prestart, createRuntime, poststart and poststop run on the host (brig runs
                // them, as Kata does); createContainer/startContainer stay with the guest runtime.
                spec.hooks?.prestart = nil; spec.hooks?.createRuntime = nil
                spec.hooks?.poststart = nil; spec.hooks?.poststop = nil
                let source: AgentRootfs = c.mode == .kvm
                    ? .block(device: MonitorConfig.guestRootDevice, fstype: "ext4") : .path(rootfs)
                return try client.create(AgentCreate(id: c.id, spec: spec, rootfs: source, terminal: c.terminal))
            case let .exec(process, execID):
                return try client.exec(id: c.id, execID: execID, process: process)
            }
        } catch { throw Self.map(error) }
    }

    func relay(stdin: Int32, stdout: Int32, stderr: Int32) throws(RuntimeError) -> Int32 {
        do { return try client.relay(stdin: stdin, stdout: stdout, stderr: stderr) } catch { throw Self.map(error) }
    }
    func start(id: String) throws(RuntimeError) {
        do { try client.start(id: id) } catch { throw Self.map(error) }
    }
    func kill(id: String, execID: String?, signal: Int32, all: Bool) throws(RuntimeError) {
        do { try client.kill(id: id, execID: execID, signal: signal, all: all) } catch { throw Self.map(error) }
    }
    func resize(id: String, execID: String?, rows: UInt16, cols: UInt16) throws(RuntimeError) {
        do { try client.resize(id: id, execID: execID, rows: rows, cols: cols) } catch { throw Self.map(error) }
    }
    func ps(id: String) throws(RuntimeError) -> [Int32] {
        do { return try client.ps(id: id) } catch { throw Self.map(error) }
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
