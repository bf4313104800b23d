/// A parsed JSON document: what `JSONParser` produces and `JSONWriter` prints. Numbers keep their
/// literal text (already checked against RFC 8259's grammar) so that integers of any width are
/// converted exactly, by the type that asks for them; objects keep their members in document order.
public indirect enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case number(String)
    case string(String)
    case array([JSONValue])
    case object([(key: String, value: JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.number(x), .number(y)): return x == y
        case let (.string(x), .string(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.object(x), .object(y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: return false
        }
    }

    /// The member named `key` (the last one when a document repeats it, as Foundation's decoder does).
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return Self.member(key, in: members)
    }

    /// The last member named `key` of `members`, by scanning (small objects).
    static func member(_ key: String, in members: [(key: String, value: JSONValue)]) -> JSONValue? {
        for member in members.reversed() where member.key == key { return member.value }
        return nil
    }

    /// Where each name last occurs among `keys`: the index large objects are looked up by, so that
    /// decoding or encoding one is not quadratic.
    static func positions(of keys: some Sequence<String>) -> [String: Int] {
        var last: [String: Int] = [:]
        for (i, k) in keys.enumerated() { last[k] = i }
        return last
    }

    /// What a decoding error calls this value ("a string", "null", ...).
    var kindDescription: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

/// Why bytes are not a JSON document, and at which byte.
public struct JSONSyntaxError: Error, CustomStringConvertible, Equatable {
    public let offset: Int
    public let reason: String
    public var description: String { "\(reason) at byte \(offset)" }
}
