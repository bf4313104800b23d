import BrigJSON
import Testing

/// Hostile bytes — random, truncated, mutated, deeply nested — end in an error, never a trap.
@Suite("JSON fuzz")
struct JSONFuzzTests {
    /// Knuth's MMIX linear congruential generator: the same inputs on every run.
    struct Seeded: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state ^ (state >> 29)
        }
    }

    struct Doc: Codable, Equatable {
        var name: String
        var ids: [UInt32]
        var nested: [String: [Int64]]?
        var flag: Bool?
        var ratio: Double?
    }

    static let valid = Array(#"{"name": "a\u00e9\ud83d\ude00", "ids": [0, 1, 4294967295], "nested": {"x": [-1, 2], "y": []}, "flag": true, "ratio": 0.5}"#.utf8)

    @Test func truncatedDocuments() throws {
        let full = try JSONDecoding.decode(Doc.self, from: Self.valid)
        #expect(full.ids == [0, 1, UInt32.max] && full.name == "a\u{e9}\u{1F600}")
        for n in 0..<Self.valid.count {
            #expect(throws: (any Error).self) { _ = try JSONDecoding.decode(Doc.self, from: Array(Self.valid[..<n])) }
        }
    }

    @Test func mutatedDocuments() throws {
        var rng = Seeded(state: 0x15)
        let tokens: [[UInt8]] = ["{", "}", "[", "]", "\"", ":", ",", "\\", "\\u", "\\ud800", "null", "-", "1e999", "0.",
                                 "18446744073709551616", "\u{FF}", "\u{0}"].map { Array($0.utf8) }
        var decoded = 0
        for _ in 0..<3000 {
            var bytes = Self.valid
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                let at = Int.random(in: 0..<max(bytes.count, 1), using: &rng)
                switch Int.random(in: 0..<4, using: &rng) {
                case 0 where !bytes.isEmpty: bytes[at] = UInt8.random(in: 0...255, using: &rng)
                case 1 where !bytes.isEmpty: bytes.removeSubrange(at..<min(bytes.count, at + Int.random(in: 1...8, using: &rng)))
                default: bytes.insert(contentsOf: tokens.randomElement(using: &rng)!, at: min(at, bytes.count))
                }
            }
            // Either a value whose re-encoding decodes to the same value, or an error.
            if let doc = try? JSONDecoding.decode(Doc.self, from: bytes) {
                decoded += 1
                #expect(try JSONDecoding.decode(Doc.self, from: JSONEncoding.encode(doc)) == doc)
            }
            if let value = try? JSONParser.parse(bytes) {
                #expect(try JSONParser.parse(JSONWriter.write(value)) == value)
            }
        }
        #expect(decoded > 10 && decoded < 2500, "decoded \(decoded)")
    }

    @Test func randomBytesAndDeepNesting() {
        var rng = Seeded(state: 7)
        for _ in 0..<2000 {
            let bytes = (0..<Int.random(in: 0...64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            #expect(throws: (any Error).self) { _ = try JSONDecoding.decode(Doc.self, from: bytes) }
        }
        for depth in [513, 5000, 100_000] {
            for (open, close) in [("[", "]"), (#"{"a":"#, "}")] {
                let text = String(repeating: open, count: depth) + "1" + String(repeating: close, count: depth)
                #expect(throws: JSONSyntaxError.self) { _ = try JSONParser.parse(Array(text.utf8)) }
                #expect(throws: JSONSyntaxError.self) { _ = try JSONParser.parse(Array(text.utf8.prefix(depth))) }
            }
        }
    }

    /// An object with many members decodes and encodes in linear time (a dictionary looks up each of its
    /// keys): 200,000 annotations decode at once; scanning for each key would not finish
    /// (4·10¹⁰ comparisons). No clock here: timings live in benchmarks/.
    @Test func largeObjectsAreLinear() throws {
        let n = 200_000
        var text = "{"
        for i in 0..<n { text += (i == 0 ? "" : ",") + "\"k\(i)\":\"v\"" }
        text += "}"
        let map = try JSONDecoding.decode([String: String].self, from: Array(text.utf8))
        #expect(map.count == n)
        // And back: the encoder's keyed containers are linear too.
        #expect(try JSONDecoding.decode([String: String].self, from: JSONEncoding.encode(map)) == map)
    }
}
