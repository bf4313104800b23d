/// A type written by hand-written code instead of a synthesized `encode(to:)`: no Encoder, no
/// CodingKeys (see JSONReadable). Its value is what the synthesized encoder wrote: members in the
/// order of the type's fields, nil ones left out.
///
/// A type that is also `Encodable` gets its `encode(to:)` from here: the writer is its one
/// definition.
public protocol JSONWritable {
    var jsonValue: JSONValue { get }
}

extension JSONEncoding {
    /// `value` as compact JSON text, by its writer.
    public static func write<T: JSONWritable>(_ value: T) -> [UInt8] { JSONWriter.write(value.jsonValue) }
}

extension JSONWritable where Self: Encodable {
    public func encode(to encoder: any Encoder) throws { try jsonValue.encode(to: encoder) }
}

/// An object being written, member by member.
public struct JSONObjectWriter {
    public private(set) var members: [(key: String, value: JSONValue)] = []
    public init() {}

    public mutating func set<T: JSONWritable>(_ key: String, _ value: T) { members.append((key, value.jsonValue)) }

    /// The member, unless `value` is nil (`encodeIfPresent`).
    public mutating func set<T: JSONWritable>(_ key: String, _ value: T?) {
        if let value { members.append((key, value.jsonValue)) }
    }

    public var jsonValue: JSONValue { .object(members) }
}

extension Array: JSONWritable where Element: JSONWritable {
    public var jsonValue: JSONValue { .array(map(\.jsonValue)) }
}

extension Dictionary: JSONWritable where Key == String, Value: JSONWritable {
    /// In the dictionary's order, as Swift's Dictionary encodes.
    public var jsonValue: JSONValue { .object(map { ($0.key, $0.value.jsonValue) }) }
}

extension String: JSONWritable {
    public var jsonValue: JSONValue { .string(self) }
}

extension Bool: JSONWritable {
    public var jsonValue: JSONValue { .bool(self) }
}

extension JSONWritable where Self: FixedWidthInteger {
    public var jsonValue: JSONValue { .number(String(self)) }
}
extension Int: JSONWritable {}
extension Int32: JSONWritable {}
extension Int64: JSONWritable {}
extension UInt: JSONWritable {}
extension UInt16: JSONWritable {}
extension UInt32: JSONWritable {}
extension UInt64: JSONWritable {}

extension JSONValue: JSONWritable {
    public var jsonValue: JSONValue { self }
}
