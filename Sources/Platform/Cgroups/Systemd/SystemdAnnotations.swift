/// `org.systemd.property.<Name>` annotations: extra properties of the container's unit, as
/// runc takes them. The value is in the GVariant text form runc parses (`uint64 123456789`,
/// `'inactive-or-failed'`, `true`, `@t 5`, `["a", "b"]`); a name ending in a lowercase letter
/// and `Sec` (`TimeoutStopSec`) becomes `…USec` with the number of seconds converted to µs.
public enum SystemdAnnotations {
    public static let prefix = "org.systemd.property."

    /// The properties the annotations ask for, in annotation-key order.
    public static func properties(_ annotations: [String: String]) throws -> [SystemdProperty] {
        var out: [SystemdProperty] = []
        for (key, text) in annotations.sorted(by: { $0.key < $1.key }) where key.hasPrefix(prefix) {
            var name = String(key.dropFirst(prefix.count))
            func fail(_ reason: String) -> SystemdAnnotationError {
                SystemdAnnotationError(annotation: key, value: text, reason: reason)
            }
            guard name.utf8.count >= 3 else { throw fail("property name \"\(name)\" is too short") }
            guard name.utf8.allSatisfy({ (65...90).contains($0) || (97...122).contains($0) }) else {
                throw fail("property name \"\(name)\" has a character that is not an ASCII letter")
            }
            var value: DBusValue
            do { value = try GVariantText.parse(text) } catch let e as GVariantText.Failure {
                throw fail(e.reason)
            }
            if name.hasSuffix("Sec") {
                let stem = name.dropLast(3)
                if let last = stem.utf8.last, (97...122).contains(last) {
                    guard let seconds = secondsAsMicroseconds(value) else {
                        throw fail("\(name) is in seconds: a number, not a \(GVariantText.Parser.typeName(value.signature))")
                    }
                    name = stem + "USec"
                    value = .uint64(seconds)
                }
            }
            out.append(SystemdProperty(name, value))
        }
        return out
    }

    /// A number of seconds as µs (runc's convertSecToUSec: the value times 10⁶, wrapping as Go's
    /// unsigned conversion does for a negative one is refused here instead).
    static func secondsAsMicroseconds(_ v: DBusValue) -> UInt64? {
        let m: UInt64 = 1_000_000
        func whole(_ n: Int64) -> UInt64? { n < 0 ? nil : UInt64(n).multipliedReportingOverflow(by: m).overflow ? nil : UInt64(n) * m }
        switch v {
        case let .byte(n): return UInt64(n) * m
        case let .int16(n): return whole(Int64(n))
        case let .uint16(n): return UInt64(n) * m
        case let .int32(n): return whole(Int64(n))
        case let .uint32(n): return UInt64(n) * m
        case let .int64(n): return whole(n)
        case let .uint64(n): return n.multipliedReportingOverflow(by: m).overflow ? nil : n * m
        case let .double(d):
            let us = d * Double(m)
            return us >= 0 && us < 1.8e19 ? UInt64(us) : nil
        default: return nil
        }
    }
}

/// A bad `org.systemd.property.*` annotation, naming it.
public struct SystemdAnnotationError: Error, CustomStringConvertible, Sendable {
    public var annotation: String
    public var value: String
    public var reason: String
    public var description: String { "annotations[\"\(annotation)\"] = \"\(value)\": \(reason)" }
}

/// The GVariant text form (as GLib prints variants, and godbus's ParseVariant reads them) for
/// what unit properties take: numbers (bare integers are int32, with `.`/`e` double), typed by a
/// keyword (`uint64 5`, `int16 -3`, `byte 7`, `boolean true`, `string 'x'`, `objectpath '/a'`) or
/// an `@sig` prefix (`@t 5`, `@as []`), booleans, quoted strings with escapes, and arrays.
enum GVariantText {
    struct Failure: Error { var reason: String }

    static let keywords: [String: String] = [
        "boolean": "b", "byte": "y", "int16": "n", "uint16": "q", "int32": "i", "uint32": "u",
        "int64": "x", "uint64": "t", "double": "d", "string": "s", "objectpath": "o", "signature": "g",
    ]

    static func parse(_ text: String) throws -> DBusValue {
        var p = Parser(bytes: Array(text.utf8))
        let v = try p.value(type: nil)
        p.skipSpace()
        guard p.i == p.bytes.count else { throw Failure(reason: "unexpected text after the value at offset \(p.i)") }
        return v
    }

    struct Parser {
        var bytes: [UInt8]
        var i = 0

        mutating func skipSpace() { while i < bytes.count, [32, 9, 10, 13].contains(bytes[i]) { i += 1 } }
        var peek: UInt8? { i < bytes.count ? bytes[i] : nil }

        mutating func word() -> String {
            let start = i
            while let c = peek, (97...122).contains(c) || (48...57).contains(c) { i += 1 }
            return String(decoding: bytes[start..<i], as: UTF8.self)
        }

        /// A value, of `type` (a D-Bus signature) when one is known.
        mutating func value(type: String?) throws -> DBusValue {
            skipSpace()
            guard let c = peek else { throw Failure(reason: "a value is missing") }
            switch c {
            case UInt8(ascii: "@"):
                i += 1
                let start = i
                while let c = peek, c != 32 { i += 1 }
                let sig = String(decoding: bytes[start..<i], as: UTF8.self)
                guard isSupported(sig) else { throw Failure(reason: "type @\(sig) is not supported (basic types and arrays of them)") }
                return try value(type: sig)
            case UInt8(ascii: "'"), UInt8(ascii: "\""):
                let s = try quoted()
                switch type ?? "s" {
                case "s": return .string(s)
                case "o": return .objectPath(s)
                case "g": return .signature(s)
                default: throw Failure(reason: "a string where type \(Self.typeName(type!)) was expected")
                }
            case UInt8(ascii: "["):
                return try array(type: type)
            case UInt8(ascii: "-"), UInt8(ascii: "+"), UInt8(ascii: "."), 48...57:
                return try number(type: type)
            default:
                let w = word()
                if w == "true" || w == "false" {
                    guard type == nil || type == "b" else { throw Failure(reason: "\(w) where type \(Self.typeName(type!)) was expected") }
                    return .bool(w == "true")
                }
                if let sig = GVariantText.keywords[w], type == nil {
                    return try value(type: sig)
                }
                throw Failure(reason: w.isEmpty ? "unexpected character at offset \(i)" : "unknown word \"\(w)\"")
            }
        }

        func isSupported(_ sig: String) -> Bool {
            let basic = "ybnqiuxtdsog"
            if sig.count == 1 { return basic.contains(subsequence: sig) }
            return sig.hasPrefix("a") && isSupported(String(sig.dropFirst()))
        }

        mutating func quoted() throws -> String {
            let q = bytes[i]
            i += 1
            var out: [UInt8] = []
            while let c = peek {
                i += 1
                if c == q { return String(decoding: out, as: UTF8.self) }
                guard c == UInt8(ascii: "\\") else { out.append(c); continue }
                guard let e = peek else { break }
                i += 1
                switch e {
                case UInt8(ascii: "n"): out.append(10)
                case UInt8(ascii: "t"): out.append(9)
                case UInt8(ascii: "r"): out.append(13)
                case UInt8(ascii: "u"):
                    guard i + 4 <= bytes.count, let code = UInt32(String(decoding: bytes[i..<i + 4], as: UTF8.self), radix: 16),
                          let scalar = Unicode.Scalar(code) else { throw Failure(reason: "a bad \\u escape at offset \(i)") }
                    i += 4
                    out += Array(String(Character(scalar)).utf8)
                default: out.append(e)  // \\, \', \"
                }
            }
            throw Failure(reason: "a string without its closing quote")
        }

        mutating func array(type: String?) throws -> DBusValue {
            if let type, !type.hasPrefix("a") { throw Failure(reason: "an array where type \(Self.typeName(type)) was expected") }
            var element = type.map { String($0.dropFirst()) }
            i += 1
            var items: [DBusValue] = []
            skipSpace()
            if peek == UInt8(ascii: "]") {
                i += 1
                guard let element else { throw Failure(reason: "an empty array needs its type (@as [])") }
                return .array(element, [])
            }
            while true {
                let v = try value(type: element)
                if element == nil { element = v.signature } else if v.signature != element {
                    throw Failure(reason: "array elements of different types (\(element!), \(v.signature))")
                }
                items.append(v)
                skipSpace()
                guard let c = peek else { throw Failure(reason: "an array without its closing ]") }
                i += 1
                if c == UInt8(ascii: "]") { return .array(element!, items) }
                guard c == UInt8(ascii: ",") else { throw Failure(reason: "expected , or ] at offset \(i - 1)") }
            }
        }

        mutating func number(type: String?) throws -> DBusValue {
            let start = i
            while let c = peek, c != 32, c != UInt8(ascii: ","), c != UInt8(ascii: "]") { i += 1 }
            let s = String(decoding: bytes[start..<i], as: UTF8.self)
            let isFloat = s.contains(".") || (s.contains("e") && !s.hasPrefix("0x"))
            func bad() -> Failure { Failure(reason: "\"\(s)\" is not a valid \(Self.typeName(type ?? (isFloat ? "d" : "i")))") }
            func integer<T: FixedWidthInteger>(_: T.Type) throws -> T {
                var t = Substring(s)
                let negative = t.hasPrefix("-")
                if negative || t.hasPrefix("+") { t = t.dropFirst() }
                let radix = t.hasPrefix("0x") ? 16 : 10
                if radix == 16 { t = t.dropFirst(2) }
                guard let magnitude = UInt64(t, radix: radix) else { throw bad() }
                if negative {
                    guard T.isSigned, magnitude <= UInt64(T.max) + 1 else { throw bad() }
                    return T(truncatingIfNeeded: 0 &- magnitude)
                }
                guard magnitude <= UInt64(T.max) else { throw bad() }
                return T(magnitude)
            }
            switch type ?? (isFloat ? "d" : "i") {
            case "y": return .byte(try integer(UInt8.self))
            case "n": return .int16(try integer(Int16.self))
            case "q": return .uint16(try integer(UInt16.self))
            case "i": return .int32(try integer(Int32.self))
            case "u": return .uint32(try integer(UInt32.self))
            case "x": return .int64(try integer(Int64.self))
            case "t": return .uint64(try integer(UInt64.self))
            case "d":
                guard let d = Double(s), d.isFinite else { throw bad() }
                return .double(d)
            default: throw Failure(reason: "a number where type \(Self.typeName(type!)) was expected")
            }
        }

        static func typeName(_ sig: String) -> String {
            GVariantText.keywords.first { $0.value == sig }?.key ?? sig
        }
    }
}
