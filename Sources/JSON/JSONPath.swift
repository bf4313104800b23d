/// Where a value is in a document, as a hand-written reader (`JSONReadable`) descends into it:
/// cheap to extend (an object or array boxes its own path once; its members' paths only name
/// the step), and turned into a coding path only when an error reports it, so that errors are
/// the `DecodingError`s the Codable decoder throws (`linux.namespaces[3].path`).
public struct JSONPath {
    enum Step {
        case root
        /// A Decoder's path, when a reader runs inside `init(from:)`.
        case coding([any CodingKey])
        /// A field of a type (a name only, as a CodingKeys case is).
        case field(String)
        /// A member of an object read as a dictionary (a name that is a number is also an index,
        /// as with Swift's own dictionary keys).
        case entry(String)
        case index(Int)
    }

    /// A path boxed once, for the paths of what is below it.
    final class Parent {
        let path: JSONPath
        init(_ path: JSONPath) { self.path = path }
    }

    let parent: Parent?
    let step: Step

    public static var root: JSONPath { JSONPath(parent: nil, step: .root) }

    /// The path of a Decoder (`decoder.codingPath`).
    public init(codingPath: [any CodingKey]) { self.init(parent: nil, step: codingPath.isEmpty ? .root : .coding(codingPath)) }

    init(parent: Parent?, step: Step) { self.parent = parent; self.step = step }

    /// The path as `DecodingError`s carry it.
    public var codingPath: [any CodingKey] {
        var keys: [any CodingKey] = []
        var steps: [Step] = [step]
        var p = parent
        while let node = p { steps.append(node.path.step); p = node.path.parent }
        for s in steps.reversed() {
            switch s {
            case .root: break
            case .coding(let path): keys += path
            case .field(let name): keys.append(IndexKey(stringValue: name))
            case .entry(let name): keys.append(EntryKey(stringValue: name))
            case .index(let i): keys.append(IndexKey(intValue: i))
            }
        }
        return keys
    }
}

/// A dictionary member's key in a coding path: like Swift's own, a name that is a number is also
/// that index (so `annotations[7]`, as the Codable decoder reports it).
struct EntryKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(stringValue: String) { self.stringValue = stringValue; intValue = Int(stringValue) }
    init(intValue: Int) { stringValue = String(intValue); self.intValue = intValue }
}

extension JSONValue {
    /// The error for a value that is not a `type`: `valueNotFound` for null, else `typeMismatch`
    /// (the Codable decoder's, word for word).
    func mismatch(_ type: Any.Type, _ codingPath: [any CodingKey]) -> DecodingError {
        if case .null = self {
            return .valueNotFound(type, .init(codingPath: codingPath, debugDescription: "Expected \(type) value but found null instead."))
        }
        return .typeMismatch(type, .init(codingPath: codingPath, debugDescription: "Expected to decode \(type) but found \(kindDescription) instead."))
    }

    /// The number as a `T`: its digits, or a float that names an integer (1.0, 1e3); anything
    /// with a fraction or out of range does not fit.
    func integer<T: FixedWidthInteger>(_ type: T.Type, _ codingPath: @autoclosure () -> [any CodingKey]) throws(DecodingError) -> T {
        guard case .number(let text) = self else { throw mismatch(type, codingPath()) }
        if let v = T(text, radix: 10) { return v }
        if let d = Double(text), d.rounded() == d, let v = T(exactly: d) { return v }
        throw .dataCorrupted(.init(codingPath: codingPath(), debugDescription: "number \(text) does not fit in \(type)"))
    }
}
