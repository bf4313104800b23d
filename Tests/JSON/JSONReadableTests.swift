import BrigJSON
import FoundationEssentials
import Testing

/// A reader against the synthesized Decodable of the same fields, side by side: the same value or
/// the same error (kind, path as keys and indices, description), read directly, as the
/// `init(from:)` of a type inside a synthesized one (the path then starts with the outer's),
/// and through Foundation's JSONDecoder.
@Suite struct JSONReadableTests {
    struct Item: JSONReadable, Decodable, Equatable {
        var id: UInt32
        var name: String?
        var tags: [String: Int64]?
        var flags: [Bool]
        init(json: JSONValue, at path: JSONPath) throws(DecodingError) {
            let o = try JSONObject(json, at: path)
            id = try o.required("id"); name = try o.optional("name"); tags = try o.optional("tags"); flags = try o.required("flags")
        }
    }
    struct Synthesized: Decodable, Equatable {
        var id: UInt32
        var name: String?
        var tags: [String: Int64]?
        var flags: [Bool]
    }
    struct Outer: Decodable { var items: [Item] }
    struct OuterSynthesized: Decodable { var items: [Synthesized] }

    static let documents = [
        #"{"id":1,"flags":[]}"#, #"{"id":1,"name":"n","tags":{"a":-1,"7":2},"flags":[true,false],"x":{}}"#,
        #"{"id":1.0,"flags":[],"name":null,"tags":null}"#, #"{"id":1e3,"flags":[]}"#, #"{"id":1,"id":2,"flags":[]}"#,
        #"{"flags":[]}"#, #"{"id":null,"flags":[]}"#, #"{"id":"1","flags":[]}"#, #"{"id":-1,"flags":[]}"#,
        #"{"id":4294967296,"flags":[]}"#, #"{"id":1.5,"flags":[]}"#, #"{"id":1}"#, #"{"id":1,"flags":null}"#,
        #"{"id":1,"flags":[true,1]}"#, #"{"id":1,"flags":[null]}"#, #"{"id":1,"flags":{}}"#, #"{"id":1,"flags":[],"name":7}"#,
        #"{"id":1,"flags":[],"tags":[]}"#, #"{"id":1,"flags":[],"tags":{"a":"b"}}"#, #"{"id":1,"flags":[],"tags":{"7":null}}"#,
        #"{"id":1,"flags":[],"tags":{"a":1,"b":"x","a":"y"}}"#, #"{"id":"x","flags":7}"#, "[]", "null", "7",
    ]

    /// The error as everything that shows of it.
    static func describe(_ error: any Error) -> String {
        guard let e = error as? DecodingError else { return "not a DecodingError: \(error)" }
        func path(_ c: DecodingError.Context) -> String {
            c.codingPath.map { k in k.intValue.map { "[\($0)]" } ?? "." + k.stringValue }.joined() + " " + c.debugDescription
        }
        switch e {
        case .typeMismatch(let t, let c): return "typeMismatch \(t) \(path(c))"
        case .valueNotFound(let t, let c): return "valueNotFound \(t) \(path(c))"
        case .keyNotFound(let k, let c): return "keyNotFound \(k.stringValue) \(path(c))"
        case .dataCorrupted(let c): return "dataCorrupted \(path(c))"
        @unknown default: return "\(e)"
        }
    }

    /// The value read, or the error described (values compare as values: maps have no order).
    enum Outcome<T: Equatable>: Equatable {
        case ok(T), error(String)
        var isOK: Bool { if case .ok = self { return true } else { return false } }
    }

    static func outcome<T: Equatable>(_ read: () throws -> T) -> Outcome<T> {
        do { return .ok(try read()) } catch { return .error(describe(error)) }
    }

    static func same(_ item: Item) -> Synthesized { Synthesized(id: item.id, name: item.name, tags: item.tags, flags: item.flags) }

    @Test(arguments: documents)
    func readerIsTheSynthesizedDecoder(document: String) {
        let bytes = Array(document.utf8)
        let expected = Self.outcome { try JSONDecoding.decode(Synthesized.self, from: bytes) }
        #expect(Self.outcome { Self.same(try JSONDecoding.read(Item.self, from: bytes)) } == expected)
        #expect(Self.outcome { Self.same(try JSONDecoding.decode(Item.self, from: bytes)) } == expected)

        let outer = Array(#"{"items":[{"id":0,"flags":[]},"#.utf8) + bytes + Array("]}".utf8)
        #expect(Self.outcome { try JSONDecoding.decode(Outer.self, from: outer).items.map(Self.same) }
                == Self.outcome { try JSONDecoding.decode(OuterSynthesized.self, from: outer).items })

        // Foundation's decoder: the same value, or an error at the same place.
        let foundation = Self.outcome { Self.same(try JSONDecoder().decode(Item.self, from: Data(bytes))) }
        let foundationSynthesized = Self.outcome { try JSONDecoder().decode(Synthesized.self, from: Data(bytes)) }
        #expect(foundation.isOK == foundationSynthesized.isOK, "\(foundation) / \(foundationSynthesized)")
        if foundation.isOK { #expect(foundation == foundationSynthesized) }
    }

    /// The corpus reaches every kind of outcome.
    @Test func documentsReachEveryOutcome() {
        let outcomes = Self.documents.map { d in Self.outcome { try JSONDecoding.decode(Synthesized.self, from: Array(d.utf8)) } }
        #expect(outcomes.contains { $0.isOK })
        for kind in ["typeMismatch", "valueNotFound", "keyNotFound", "dataCorrupted", "[7]"] {
            #expect(outcomes.contains { if case .error(let e) = $0 { e.contains(kind) } else { false } }, "no document ends in \(kind)")
        }
    }
}
