import BrigAgentProtocol
import BrigCore

extension AgentError {
    /// A runtime error as the agent answers it (the host maps it back: BrigMicroVM).
    public init(_ e: RuntimeError) {
        let code: Code
        switch e.kind {
        case .notFound: code = .notFound
        case .exists: code = .exists
        case .invalidState: code = .invalidState
        case .config: code = .config
        case .system: code = .system
        case .hook: code = .hook
        case .usage: code = .usage
        case .unsupported: code = .unsupported
        case .internalError: code = .internalError
        }
        self.init(code, e.message)
    }
}
