/// Encodes Codable types to compact JSON without Foundation: members in the order the type
/// encodes them, nil optionals left out (`encodeIfPresent`), non-finite numbers refused.
public enum JSONEncoding {
    public static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        JSONWriter.write(try encodeValue(value))
    }

    /// `value` as JSON text laid out as `format` asks (what the CLI prints).
    public static func encode<T: Encodable>(_ value: T, format: JSONWriter.Format) throws -> [UInt8] {
        JSONWriter.write(try encodeValue(value), format: format)
    }

    public static func encodeValue<T: Encodable>(_ value: T) throws -> JSONValue {
        let node = Node()
        try value.encode(to: ValueEncoder(node, path: []))
        return node.value
    }
}

/// What an encoder writes into: a scalar, or an object's or array's children, filled in as the
/// containers are used (containers hand out nodes; the tree is read once encoding is done).
final class Node {
    enum Kind { case empty, scalar(JSONValue), object, array }
    var kind = Kind.empty
    var keys: [String] = []
    var children: [Node] = []

    init() {}
    init(_ v: JSONValue) { kind = .scalar(v) }

    var value: JSONValue {
        switch kind {
        case .empty: return .object([])
        case .scalar(let v): return v
        case .object: return .object(zip(keys, children).map { ($0, $1.value) })
        case .array: return .array(children.map(\.value))
        }
    }

    /// Where each key is, once an object is large enough that scanning would be quadratic.
    var index: [String: Int]? = nil

    /// The child named `key`, replacing what an earlier encode put there.
    func child(_ key: String) -> Node {
        let node = Node()
        if index == nil, keys.count >= 16 { index = JSONValue.positions(of: keys) }
        let existing = index.map { $0[key] } ?? keys.firstIndex(of: key)
        if let i = existing { children[i] = node; return node }
        index?[key] = keys.count
        keys.append(key)
        children.append(node)
        return node
    }

    func append() -> Node { let node = Node(); children.append(node); return node }

    /// Makes this node an empty object or array, unless it already is one (a type that asks for
    /// the same container twice keeps what it encoded).
    func become(_ container: Kind) {
        switch (kind, container) {
        case (.object, .object), (.array, .array): return
        default: kind = container; keys = []; children = []; index = nil
        }
    }
}

struct ValueEncoder: Encoder {
    let node: Node
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(_ node: Node, path: [any CodingKey]) { self.node = node; codingPath = path }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        node.become(.object)
        return KeyedEncodingContainer(KeyedEncoder<Key>(node: node, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        node.become(.array)
        return UnkeyedEncoder(node: node, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { self }
}

/// The JSON for a scalar, or an error naming the path for a number JSON cannot hold.
func scalar<T: BinaryFloatingPoint & CustomStringConvertible>(_ v: T, _ path: [any CodingKey]) throws -> JSONValue {
    guard v.isFinite else {
        throw EncodingError.invalidValue(v, .init(codingPath: path, debugDescription: "\(v) is not representable in JSON"))
    }
    var text = v.description
    if text.hasSuffix(".0") { text.removeLast(2) }
    return .number(text)
}

extension ValueEncoder: SingleValueEncodingContainer {
    func set(_ v: JSONValue) { node.kind = .scalar(v) }
    func encodeNil() { set(.null) }
    func encode(_ v: Bool) { set(.bool(v)) }
    func encode(_ v: String) { set(.string(v)) }
    func encode(_ v: Double) throws { set(try scalar(v, codingPath)) }
    func encode(_ v: Float) throws { set(try scalar(v, codingPath)) }
    func encode(_ v: Int) { set(.number(String(v))) }
    func encode(_ v: Int8) { set(.number(String(v))) }
    func encode(_ v: Int16) { set(.number(String(v))) }
    func encode(_ v: Int32) { set(.number(String(v))) }
    func encode(_ v: Int64) { set(.number(String(v))) }
    func encode(_ v: UInt) { set(.number(String(v))) }
    func encode(_ v: UInt8) { set(.number(String(v))) }
    func encode(_ v: UInt16) { set(.number(String(v))) }
    func encode(_ v: UInt32) { set(.number(String(v))) }
    func encode(_ v: UInt64) { set(.number(String(v))) }
    func encode<T: Encodable>(_ v: T) throws { try v.encode(to: self) }
}

struct KeyedEncoder<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let node: Node
    let codingPath: [any CodingKey]

    func encoder(_ key: Key) -> ValueEncoder { ValueEncoder(node.child(key.stringValue), path: codingPath + [key]) }

    mutating func encodeNil(forKey key: Key) { encoder(key).encodeNil() }
    mutating func encode(_ v: Bool, forKey key: Key) { encoder(key).encode(v) }
    mutating func encode(_ v: String, forKey key: Key) { encoder(key).encode(v) }
    mutating func encode(_ v: Double, forKey key: Key) throws { try encoder(key).encode(v) }
    mutating func encode(_ v: Float, forKey key: Key) throws { try encoder(key).encode(v) }
    mutating func encode(_ v: Int, forKey key: Key) { encoder(key).encode(v) }
    mutating func encode(_ v: Int8, forKey key: Key) { encoder(key).encode(v) }
    mutating func encode(_ v: Int16, forKey key: Key) { encoder(key).encode(v) }
    mutating func encode(_ v: Int32, forKey key: Key) { encoder(key).encode(v) }
    mutating func encode(_ v: Int64, forKey key: Key) { encoder(key).encode(v) }
    mutating func encode(_ v: UInt, forKey key: Key) { encoder(key).encode(v) }
    mutating func encode(_ v: UInt8, forKey key: Key) { encoder(key).encode(v) }
    mutating func encode(_ v: UInt16, forKey key: Key) { encoder(key).encode(v) }
    mutating func encode(_ v: UInt32, forKey key: Key) { encoder(key).encode(v) }
    mutating func encode(_ v: UInt64, forKey key: Key) { encoder(key).encode(v) }
    mutating func encode<T: Encodable>(_ v: T, forKey key: Key) throws { try v.encode(to: encoder(key)) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        encoder(key).container(keyedBy: type)
    }
    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer { encoder(key).unkeyedContainer() }
    mutating func superEncoder() -> any Encoder { ValueEncoder(node.child("super"), path: codingPath + [IndexKey.super]) }
    mutating func superEncoder(forKey key: Key) -> any Encoder { encoder(key) }
}

struct UnkeyedEncoder: UnkeyedEncodingContainer {
    let node: Node
    let codingPath: [any CodingKey]
    var count: Int { node.children.count }

    func encoder() -> ValueEncoder { ValueEncoder(node.append(), path: codingPath + [IndexKey(intValue: node.children.count)]) }

    mutating func encodeNil() { encoder().encodeNil() }
    mutating func encode(_ v: Bool) { encoder().encode(v) }
    mutating func encode(_ v: String) { encoder().encode(v) }
    mutating func encode(_ v: Double) throws { try encoder().encode(v) }
    mutating func encode(_ v: Float) throws { try encoder().encode(v) }
    mutating func encode(_ v: Int) { encoder().encode(v) }
    mutating func encode(_ v: Int8) { encoder().encode(v) }
    mutating func encode(_ v: Int16) { encoder().encode(v) }
    mutating func encode(_ v: Int32) { encoder().encode(v) }
    mutating func encode(_ v: Int64) { encoder().encode(v) }
    mutating func encode(_ v: UInt) { encoder().encode(v) }
    mutating func encode(_ v: UInt8) { encoder().encode(v) }
    mutating func encode(_ v: UInt16) { encoder().encode(v) }
    mutating func encode(_ v: UInt32) { encoder().encode(v) }
    mutating func encode(_ v: UInt64) { encoder().encode(v) }
    mutating func encode<T: Encodable>(_ v: T) throws { try v.encode(to: encoder()) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        encoder().container(keyedBy: type)
    }
    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer { encoder().unkeyedContainer() }
    mutating func superEncoder() -> any Encoder { encoder() }
}
