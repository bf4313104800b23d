import BrigJSON
import Testing

/// What config.json and state.json are decoded and encoded with: Swift's Codable over a strict
/// parser, errors with the field's coding path.
@Suite("JSON")
struct JSONTests {
    struct User: Codable, Equatable {
        var uid: UInt32
        var gid: UInt32
        var additionalGids: [UInt32]?
        var umask: UInt32?
    }
    struct Process: Codable, Equatable {
        var args: [String]
        var env: [String]?
        var user: User
        var terminal: Bool?
        var score: Int64?
        var ratio: Double?
        var labels: [String: String]?
    }

    static func path(_ error: any Error) -> String {
        let ctx: DecodingError.Context?
        switch error as? DecodingError {
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c): ctx = c
        case .keyNotFound(let k, let c): return (c.codingPath + [k]).map { $0.intValue.map { "[\($0)]" } ?? "." + $0.stringValue }.joined()
        default: ctx = nil
        }
        return ctx.map { $0.codingPath.map { $0.intValue.map { "[\($0)]" } ?? "." + $0.stringValue }.joined() } ?? "?"
    }

    @Test func decodesAndRoundTrips() throws {
        let text = #" { "args": ["sh", "-c", "echo \"hi\"\n\u00e9\ud83d\ude00/"], "user": {"uid": 0, "gid": 4294967295, "additionalGids": []},"#
            + #" "terminal": false, "score": -9223372036854775808, "ratio": 1.5e2, "labels": {"a/b": "", "c": "\t"}, "extra": [null, {}]} "#
        let p = try JSONDecoding.decode(Process.self, from: Array(text.utf8))
        #expect(p.args == ["sh", "-c", "echo \"hi\"\n\u{e9}\u{1F600}/"])
        #expect(p.user == User(uid: 0, gid: UInt32.max, additionalGids: [], umask: nil))
        #expect(p.terminal == false && p.score == Int64.min && p.ratio == 150 && p.env == nil)
        #expect(p.labels == ["a/b": "", "c": "\t"])
        let encoded = try JSONEncoding.encode(p)
        #expect(try JSONDecoding.decode(Process.self, from: encoded) == p)
        // nil optionals are left out; slashes and non-ASCII as is; members in encoding order.
        let user = String(decoding: try JSONEncoding.encode(User(uid: 1, gid: 2, additionalGids: nil, umask: 18)), as: UTF8.self)
        #expect(user == #"{"uid":1,"gid":2,"umask":18}"#)
        #expect(String(decoding: try JSONEncoding.encode(["a/\u{e9}\u{1}\"\\"]), as: UTF8.self) == #"["a/é\u0001\"\\"]"#)
        #expect(String(decoding: try JSONEncoding.encode(["\u{b}\u{1f}\u{7f}"]), as: UTF8.self) == "[\"\\u000b\\u001f\u{7f}\"]")
        #expect(String(decoding: try JSONEncoding.encode([1.5, 2.0, -0.25]), as: UTF8.self) == "[1.5,2,-0.25]")
        // A key encoded twice keeps its first place and its last value, in small and large objects.
        struct Twice: Encodable {
            var extra: Int
            func encode(to encoder: any Encoder) throws {
                struct K: CodingKey { var stringValue: String; var intValue: Int? { nil }; init(stringValue: String) { self.stringValue = stringValue }; init?(intValue: Int) { nil } }
                var c = encoder.container(keyedBy: K.self)
                try c.encode(1, forKey: K(stringValue: "a"))
                for i in 0..<extra { try c.encode(i, forKey: K(stringValue: "x\(i)")) }
                try c.encode(2, forKey: K(stringValue: "a"))
            }
        }
        #expect(String(decoding: try JSONEncoding.encode(Twice(extra: 1)), as: UTF8.self) == #"{"a":2,"x0":0}"#)
        #expect(try JSONParser.parse(JSONEncoding.encode(Twice(extra: 20)))["a"] == .number("2"))
        #expect(String(decoding: try JSONEncoding.encode(Twice(extra: 20)), as: UTF8.self).hasPrefix(#"{"a":2,"x0":0,"#))
    }

    /// The CLI's layouts print what Foundation's `JSONEncoder` printed with `.sortedKeys`,
    /// `.prettyPrinted` and `.withoutEscapingSlashes` (the expected text is its output).
    @Test func formats() throws {
        struct S: Encodable {
            var a10 = 1, a9 = 2, B = 3, a = 4, cpuShares = 5, cpus = 6, _x = 7, e: [Int] = [], o: [String: Int] = [:]
            var arr = [[1, 2], []], s = "a/b\u{1}\u{8}\u{c}\u{e9}", n: Int? = nil, nested = ["k": ["x": 1]], ab = 1, aB = 2, éa = 1, fa = 3
        }
        let sorted = String(decoding: try JSONEncoding.encode(S(), format: .sortedKeys), as: UTF8.self)
        #expect(sorted == #"{"B":3,"_x":7,"a":4,"a10":1,"a9":2,"aB":2,"ab":1,"arr":[[1,2],[]],"cpuShares":5,"cpus":6,"e":[],"fa":3,"#
                + #""nested":{"k":{"x":1}},"o":{},"s":"a/b\u0001\b\f\#u{e9}","\#u{e9}a":1}"#)
        let pretty = String(decoding: try JSONEncoding.encode(S(), format: [.pretty, .sortedKeys]), as: UTF8.self)
        #expect(pretty == """
            {
              "B" : 3,
              "_x" : 7,
              "a" : 4,
              "a10" : 1,
              "a9" : 2,
              "aB" : 2,
              "ab" : 1,
              "arr" : [
                [
                  1,
                  2
                ],
                [

                ]
              ],
              "cpuShares" : 5,
              "cpus" : 6,
              "e" : [

              ],
              "fa" : 3,
              "nested" : {
                "k" : {
                  "x" : 1
                }
              },
              "o" : {

              },
              "s" : "a/b\\u0001\\b\\f\u{e9}",
              "\u{e9}a" : 1
            }
            """)
        #expect(String(decoding: try JSONEncoding.encode("x", format: .pretty), as: UTF8.self) == #""x""#)
        // Unsorted, members keep the type's order.
        #expect(String(decoding: try JSONEncoding.encode(["b": 1], format: .pretty), as: UTF8.self) == "{\n  \"b\" : 1\n}")
    }

    @Test func errorsNameTheField() throws {
        func fails(_ json: String, at path: String, _ check: (DecodingError) -> Bool) {
            do {
                _ = try JSONDecoding.decode(Process.self, from: Array(json.utf8))
                Issue.record("\(json) decoded")
            } catch {
                #expect(Self.path(error) == path, "\(json): \(error)")
                #expect((error as? DecodingError).map(check) == true, "\(json): \(error)")
            }
        }
        let user = #""user": {"uid": 0, "gid": 0}"#
        fails(#"{"args": "sh", \#(user)}"#, at: ".args") { if case .typeMismatch = $0 { true } else { false } }
        fails(#"{"args": ["sh", 1], \#(user)}"#, at: ".args[1]") { if case .typeMismatch(let t, _) = $0 { t == String.self } else { false } }
        fails(#"{"args": [], "user": {"uid": "root", "gid": 0}}"#, at: ".user.uid") { if case .typeMismatch = $0 { true } else { false } }
        fails(#"{"args": [], "user": {"uid": null, "gid": 0}}"#, at: ".user.uid") { if case .valueNotFound = $0 { true } else { false } }
        fails(#"{"args": [], "user": {"gid": 0}}"#, at: ".user.uid") { if case .keyNotFound = $0 { true } else { false } }
        fails(#"{"args": [], "user": null}"#, at: ".user") { if case .valueNotFound = $0 { true } else { false } }
        fails(#"{"args": [], "user": {"uid": 4294967296, "gid": 0}}"#, at: ".user.uid") { if case .dataCorrupted = $0 { true } else { false } }
        fails(#"{"args": [], "user": {"uid": -1, "gid": 0}}"#, at: ".user.uid") { if case .dataCorrupted = $0 { true } else { false } }
        fails(#"{"args": [], "user": {"uid": 1.5, "gid": 0}}"#, at: ".user.uid") { if case .dataCorrupted = $0 { true } else { false } }
        fails(#"{"args": [], \#(user), "ratio": 1e999}"#, at: ".ratio") { if case .dataCorrupted = $0 { true } else { false } }
        fails(#"{"args": [], \#(user), "labels": {"a": 1}}"#, at: ".labels.a") { if case .typeMismatch = $0 { true } else { false } }
        fails(#"{"args": [] \#(user)}"#, at: "") { if case .dataCorrupted = $0 { true } else { false } }
        // Integers written as 1.0 or 1e3 are integers (Foundation's decoder accepts them too).
        let p = try JSONDecoding.decode(Process.self, from: Array(#"{"args": [], "user": {"uid": 1.0, "gid": 1e3}}"#.utf8))
        #expect(p.user.uid == 1 && p.user.gid == 1000)
        // The last of repeated members wins, in small and large objects alike.
        #expect(try JSONDecoding.decode([String: Int].self, from: Array(#"{"a": 1, "a": 2}"#.utf8)) == ["a": 2])
        let many = (0..<40).map { #""k\#($0 % 30)": \#($0)"# }.joined(separator: ", ")
        let decoded = try JSONDecoding.decode([String: Int].self, from: Array(("{" + many + "}").utf8))
        #expect(decoded.count == 30 && decoded["k0"] == 30 && decoded["k9"] == 39 && decoded["k10"] == 10)
        #expect(try JSONDecoding.decode(Process.self, from: Array(#"{"args": [], "user": {"uid": 1, "gid": 2}, "#.utf8)
            + Array(many.utf8) + Array(#", "user": {"uid": 3, "gid": 4}}"#.utf8)).user == User(uid: 3, gid: 4))
    }

    @Test(arguments: [
        "", " ", "nul", "tru", "[1,]", "[,1]", "{\"a\" 1}", "{\"a\":1,}", "{a:1}", "[1 2]", "01", "-", "-01", "1.", ".5",
        "+1", "1e", "1e+", "0x10", "NaN", "Infinity", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\u12G4\"", "\"\\ud800\"",
        "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"a\tb\"", "\"\u{1}\"", "[1]]", "{} {}", "'a'", "[\"a\"", "{\"a\":",
    ])
    func rejectsWhatIsNotJSON(_ text: String) {
        #expect(throws: JSONSyntaxError.self) { _ = try JSONParser.parse(Array(text.utf8)) }
    }

    @Test func rejectsInvalidUTF8() throws {
        for bytes: [UInt8] in [[0xFF], [0xC0, 0xAF], [0xE0, 0x80, 0xAF], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xC3], [0x80]] {
            #expect(throws: JSONSyntaxError.self) { _ = try JSONParser.parse([0x22] + bytes + [0x22]) }
            #expect(throws: JSONSyntaxError.self) { _ = try JSONParser.parse([0x22, 0x5C, 0x6E] + bytes + [0x22]) }
        }
        #expect(try JSONParser.parse(Array("\"\u{10FFFF}\"".utf8)) == .string("\u{10FFFF}"))
    }

    @Test func accepts() throws {
        #expect(try JSONParser.parse(Array(" [0, -0, 1.5E-3, 10e+2, true, false, null, \"\", {}] ".utf8))
                == .array([.number("0"), .number("-0"), .number("1.5E-3"), .number("10e+2"), .bool(true), .bool(false), .null, .string(""), .object([])]))
        #expect(try JSONParser.parse(Array(#""\"\\\/\b\f\n\r\t\u0041\u00E9\uD83D\uDE00""#.utf8)) == .string("\"\\/\u{8}\u{c}\n\r\tA\u{e9}\u{1F600}"))
        #expect(try JSONParser.parse([0xEF, 0xBB, 0xBF] + Array(" [1]".utf8)) == .array([.number("1")]))
        #expect(throws: JSONSyntaxError.self) { _ = try JSONParser.parse([0xEF, 0xBB, 0xBF]) }
        #expect(throws: JSONSyntaxError.self) { _ = try JSONParser.parse([0xEF, 0xBB, 0xBF, 0xEF, 0xBB, 0xBF, 0x31]) }
        #expect(throws: JSONSyntaxError.self) { _ = try JSONParser.parse(Array("[1]".utf16).flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }) }
        let deepest = String(repeating: "[", count: JSONParser.maxDepth) + String(repeating: "]", count: JSONParser.maxDepth)
        #expect(throws: Never.self) { _ = try JSONParser.parse(Array(deepest.utf8)) }
        #expect(throws: JSONSyntaxError.self) { _ = try JSONParser.parse(Array(("[" + deepest + "]").utf8)) }
    }

    @Test func refusesNonFiniteNumbers() {
        #expect(throws: EncodingError.self) { _ = try JSONEncoding.encode([Double.nan]) }
        #expect(throws: EncodingError.self) { _ = try JSONEncoding.encode(["x": Double.infinity]) }
    }
}
