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
