import BrigLinux
import BrigOCI

/// The error every verb reports. `description` is the one line the user (or the engine, through
/// the JSON log) sees.
public struct RuntimeError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        case notFound, exists, invalidState, config, system, hook, usage, unsupported, internalError
    }
    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) { self.kind = kind; self.message = message }
    public var description: String { message }

    public static func wrap(_ error: any Error, _ context: String? = nil) -> RuntimeError {
        let prefix = context.map { $0 + ": " } ?? ""
        switch error {
        case let e as RuntimeError: return context == nil ? e : RuntimeError(e.kind, prefix + e.message)
        case let e as ConfigError: return RuntimeError(.config, prefix + "invalid config: \(e)")
        case let e as SystemError: return RuntimeError(.system, prefix + "\(e)")
        default: return RuntimeError(.internalError, prefix + "\(error)")
        }
    }
}
