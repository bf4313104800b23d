/// JSON text for a value: `"`, `\` and control characters escaped (`\b`, `\f`, `\n`, `\r`, `\t`,
/// else `\u00XX`), everything else (`/`, non-ASCII) as is. Compact and in the value's member
/// order unless a `Format` asks otherwise.
public enum JSONWriter {
    /// How the text is laid out (the options of Foundation's `JSONEncoder` the CLI used, with the
    /// same output).
    public struct Format: OptionSet, Sendable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        /// Object members by name (String's `<`: Unicode scalar order, so `"B" < "_x" < "a"`).
        public static let sortedKeys = Format(rawValue: 1)
        /// One member or element per line, indented by two spaces, `"name" : value`; an empty
        /// array or object is its brackets around an empty line.
        public static let pretty = Format(rawValue: 2)
    }

    public static func write(_ value: JSONValue, format: Format = []) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(value, format, depth: 0, into: &out)
        return out
    }

    /// `value` laid out as `format` asks (compact when empty), its nested lines indented for `depth`.
    static func write(_ value: JSONValue, _ format: Format, depth: Int, into out: inout [UInt8]) {
        let pretty = format.contains(.pretty)
        func open(_ bracket: Unicode.Scalar) { out.append(UInt8(ascii: bracket)); if pretty { out.append(0x0A) } }
        func indent(_ d: Int) { if pretty { out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: 2 * d)) } }
        func separator(_ i: Int) {
            guard i > 0 else { return }
            out.append(UInt8(ascii: ","))
            if pretty { out.append(0x0A) }
        }
        func close(_ bracket: Unicode.Scalar) {
            if pretty { out.append(0x0A); indent(depth) }
            out.append(UInt8(ascii: bracket))
        }
        switch value {
        case .array(let elements):
            open("[")
            for (i, e) in elements.enumerated() {
                separator(i)
                indent(depth + 1)
                write(e, format, depth: depth + 1, into: &out)
            }
            close("]")
        case .object(var members):
            if format.contains(.sortedKeys) { members.sort { $0.key < $1.key } }
            open("{")
            for (i, m) in members.enumerated() {
                separator(i)
                indent(depth + 1)
                string(m.key, into: &out)
                if pretty { out.append(UInt8(ascii: " ")) }
                out.append(UInt8(ascii: ":"))
                if pretty { out.append(UInt8(ascii: " ")) }
                write(m.value, format, depth: depth + 1, into: &out)
            }
            close("}")
        default: scalar(value, into: &out)
        }
    }

    static func scalar(_ value: JSONValue, into out: inout [UInt8]) {
        switch value {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .number(let n): out.append(contentsOf: n.utf8)
        case .string(let s): string(s, into: &out)
        case .array, .object: write(value, [], depth: 0, into: &out)
        }
    }

    static func string(_ s: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for c in s.utf8 {
            switch c {
            case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), c])
            case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), c])
            case 0x08: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
            case 0x0C: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
            case 0x0A: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0..<0x20: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), 0x30, 0x30, hexDigit(c >> 4), hexDigit(c & 15)])
            default: out.append(c)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// The lowercase hex digit of a nibble (no table: this runs for every string written).
    static func hexDigit(_ n: UInt8) -> UInt8 { n < 10 ? 0x30 + n : 0x61 + n - 10 }
}
