/// A `JSONValue` decoded: what a reader's `init(from:)` takes from its decoder. From
/// BrigJSON's decoder it is the value the decoder holds, as is; from another (a test's
/// JSONDecoder) it is rebuilt from what that decoder offers.
extension JSONValue: Decodable {
    public init(from decoder: any Decoder) throws {
        if let d = decoder as? ValueDecoder { self = d.value; return }
        if let c = try? decoder.container(keyedBy: IndexKey.self) {
            self = .object(try c.allKeys.map { ($0.stringValue, try c.decode(JSONValue.self, forKey: $0)) })
        } else if var c = try? decoder.unkeyedContainer() {
            var elements: [JSONValue] = []
            while !c.isAtEnd { elements.append(try c.decode(JSONValue.self)) }
            self = .array(elements)
        } else {
            let c = try decoder.singleValueContainer()
            if c.decodeNil() { self = .null }
            else if let b = try? c.decode(Bool.self) { self = .bool(b) }
            else if let i = try? c.decode(Int64.self) { self = .number(String(i)) }
            else if let u = try? c.decode(UInt64.self) { self = .number(String(u)) }
            else if let d = try? c.decode(Double.self) { self = .number(d.description) }
            else { self = .string(try c.decode(String.self)) }
        }
    }
}

/// A `JSONValue` encoded: what a writer's `encode(to:)` gives its encoder. BrigJSON's encoder
/// takes it as is; another (a test's JSONEncoder) is given its parts.
extension JSONValue: Encodable {
    public func encode(to encoder: any Encoder) throws {
        if let e = encoder as? ValueEncoder { e.set(self); return }
        switch self {
        case .null: var c = encoder.singleValueContainer(); try c.encodeNil()
        case .bool(let b): var c = encoder.singleValueContainer(); try c.encode(b)
        case .string(let s): var c = encoder.singleValueContainer(); try c.encode(s)
        case .number(let n):
            var c = encoder.singleValueContainer()
            if let i = Int64(n) { try c.encode(i) } else if let u = UInt64(n) { try c.encode(u) } else { try c.encode(Double(n) ?? 0) }
        case .array(let elements):
            var c = encoder.unkeyedContainer()
            for e in elements { try c.encode(e) }
        case .object(let members):
            var c = encoder.container(keyedBy: IndexKey.self)
            for m in members { try c.encode(m.value, forKey: IndexKey(stringValue: m.key)) }
        }
    }
}
