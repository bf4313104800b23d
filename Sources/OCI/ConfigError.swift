// One error type for everything wrong with a bundle's config, always naming the field.

public struct ConfigError: Error, Equatable, CustomStringConvertible, Sendable {
    /// JSON path of the offending field, e.g. `linux.namespaces[2].type`.
    public var field: String
    public var message: String
    public init(_ field: String, _ message: String) { self.field = field; self.message = message }
    public var description: String { field.isEmpty ? message : "\(field): \(message)" }
}
