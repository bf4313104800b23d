/// A type read from a parsed document by hand-written code instead of a synthesized
/// `init(from:)`: no Decoder, no CodingKeys (whose conformances the Swift runtime looks up by a
/// scan of every conformance record the first time each is used, ~0.1 ms per `brig` process).
/// Its errors are the `DecodingError`s the Codable decoder would throw, path and all: a reader
/// reads its fields in the order the synthesized `init(from:)` decoded them, with `JSONObject`.
///
/// A type that is also `Decodable` (for a wire protocol, or a test's JSONDecoder) gets its
/// `init(from:)` from here: the reader is its one definition.
public protocol JSONReadable {
    init(json: JSONValue, at path: JSONPath) throws(DecodingError)
}

extension JSONDecoding {
    /// `bytes` as a `T`, by its reader; a document that is not JSON is `.dataCorrupted` with an
    /// empty path, as with `decode`.
    public static func read<T: JSONReadable>(_ type: T.Type, from bytes: [UInt8]) throws(DecodingError) -> T {
        try T(json: try parse(bytes), at: .root)
    }

    static func parse(_ bytes: [UInt8]) throws(DecodingError) -> JSONValue {
        do { return try JSONParser.parse(bytes) } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "not valid JSON: \(error)", underlyingError: error))
        }
    }
}

extension JSONReadable where Self: Decodable {
    /// Decodable by the reader: BrigJSON's decoder hands over the value it holds; another
    /// decoder's value is decoded as a `JSONValue` first.
    public init(from decoder: any Decoder) throws {
        if let d = decoder as? ValueDecoder {
            try self.init(json: d.value, at: JSONPath(codingPath: d.codingPath))
        } else {
            try self.init(json: try JSONValue(from: decoder), at: JSONPath(codingPath: decoder.codingPath))
        }
    }
}

/// An object being read: its members by name (the last of a repeated name, as the Codable decoder
/// reads it), each read with its path.
public struct JSONObject {
    let members: [(key: String, value: JSONValue)]
    /// Where each name last occurs, for objects large enough that scanning would be quadratic.
    let index: [String: Int]?
    let parent: JSONPath.Parent

    /// `value` as an object; anything else is the mismatch the Codable decoder reports.
    public init(_ value: JSONValue, at path: JSONPath) throws(DecodingError) {
        guard case .object(let members) = value else { throw value.mismatch([String: Any].self, path.codingPath) }
        self.members = members
        index = members.count > 16 ? JSONValue.positions(of: members.lazy.map(\.key)) : nil
        parent = JSONPath.Parent(path)
    }

    public var path: JSONPath { parent.path }

    public func value(_ key: String) -> JSONValue? {
        if let index { return index[key].map { members[$0].value } }
        return JSONValue.member(key, in: members)
    }

    public func contains(_ key: String) -> Bool { value(key) != nil }

    /// The field `key`: missing is `keyNotFound`; null is for `T`'s reader to refuse.
    public func required<T: JSONReadable>(_ key: String, as type: T.Type = T.self) throws(DecodingError) -> T {
        guard let v = value(key) else {
            throw .keyNotFound(IndexKey(stringValue: key), .init(codingPath: path.codingPath, debugDescription: "No value associated with key \(key)."))
        }
        return try T(json: v, at: JSONPath(parent: parent, step: .field(key)))
    }

    /// The field `key`, nil when it is missing or null.
    public func optional<T: JSONReadable>(_ key: String, as type: T.Type = T.self) throws(DecodingError) -> T? {
        guard let v = value(key) else { return nil }
        if case .null = v { return nil }
        return try T(json: v, at: JSONPath(parent: parent, step: .field(key)))
    }

    /// The error for a field whose value is not one the type knows (`dataCorrupted` at the field).
    public func invalid(_ key: String, _ why: String) -> DecodingError {
        .dataCorrupted(.init(codingPath: JSONPath(parent: parent, step: .field(key)).codingPath, debugDescription: why))
    }
}

extension Array: JSONReadable where Element: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        guard case .array(let elements) = json else { throw json.mismatch([Any].self, path.codingPath) }
        let parent = JSONPath.Parent(path)
        self = []
        reserveCapacity(elements.count)
        for (i, e) in elements.enumerated() { append(try Element(json: e, at: JSONPath(parent: parent, step: .index(i)))) }
    }
}

extension Dictionary: JSONReadable where Key == String, Value: JSONReadable {
    /// Each distinct name in document order, with its last value (as Swift's Dictionary decodes).
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        guard case .object(let members) = json else { throw json.mismatch([String: Any].self, path.codingPath) }
        let parent = JSONPath.Parent(path)
        let last = JSONValue.positions(of: members.lazy.map(\.key))
        self.init(minimumCapacity: last.count)
        for m in members where self[m.key] == nil {
            self[m.key] = try Value(json: members[last[m.key]!].value, at: JSONPath(parent: parent, step: .entry(m.key)))
        }
    }
}

extension String: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        guard case .string(let s) = json else { throw json.mismatch(String.self, path.codingPath) }
        self = s
    }
}

extension Bool: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
        guard case .bool(let b) = json else { throw json.mismatch(Bool.self, path.codingPath) }
        self = b
    }
}

extension JSONReadable where Self: FixedWidthInteger {
    public init(json: JSONValue, at path: JSONPath) throws(DecodingError) { self = try json.integer(Self.self, path.codingPath) }
}
extension Int: JSONReadable {}
extension Int32: JSONReadable {}
extension Int64: JSONReadable {}
extension UInt: JSONReadable {}
extension UInt16: JSONReadable {}
extension UInt32: JSONReadable {}
extension UInt64: JSONReadable {}

extension JSONValue: JSONReadable {
    public init(json: JSONValue, at path: JSONPath) { self = json }
}
