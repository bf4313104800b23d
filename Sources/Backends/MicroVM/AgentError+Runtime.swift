import BrigAgentProtocol
import BrigCore

extension AgentError {
    /// The runtime error kind the host CLI reports for the agent's answer (transport failures
    /// are system errors). The agent's side of the mapping is in BrigAgent.
    public var kind: RuntimeError.Kind {
        switch code {
        case .notFound: return .notFound
        case .exists: return .exists
        case .invalidState: return .invalidState
        case .config: return .config
        case .system, .connection: return .system
        case .hook: return .hook
        case .usage: return .usage
        case .unsupported: return .unsupported
        case .internalError, .protocolError, .versionMismatch: return .internalError
        }
    }

    public var runtimeError: RuntimeError { RuntimeError(kind, message) }
}
