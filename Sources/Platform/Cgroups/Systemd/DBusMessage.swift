// The D-Bus wire format (the "D-Bus Specification", section "Message Protocol"), as much of it
// as brig's systemd driver speaks: typed values, their alignment rules, and method calls,
// returns, errors and signals. brig is a static binary and Debian ships no static libsystemd, so
// the driver talks to systemd over its Unix socket itself (DBusConnection.swift).

/// A D-Bus value with its type. Arrays carry their element signature so an empty array still
/// has a type.
public indirect enum DBusValue: Equatable, Sendable {
    case byte(UInt8)
    case bool(Bool)
    case int16(Int16)
    case uint16(UInt16)
    case int32(Int32)
    case uint32(UInt32)
    case int64(Int64)
    case uint64(UInt64)
    case double(Double)
    case string(String)
    case objectPath(String)
    case signature(String)
    case unixFD(UInt32)
    case array(String, [DBusValue])
    case structure([DBusValue])
    case dictEntry(DBusValue, DBusValue)
    case variant(DBusValue)

    public var signature: String {
        switch self {
        case .byte: return "y"
        case .bool: return "b"
        case .int16: return "n"
        case .uint16: return "q"
        case .int32: return "i"
        case .uint32: return "u"
        case .int64: return "x"
        case .uint64: return "t"
        case .double: return "d"
        case .string: return "s"
        case .objectPath: return "o"
        case .signature: return "g"
        case .unixFD: return "h"
        case let .array(element, _): return "a" + element
        case let .structure(fields): return "(" + fields.map(\.signature).joined() + ")"
        case let .dictEntry(k, v): return "{" + k.signature + v.signature + "}"
        case .variant: return "v"
        }
    }

    /// The text of a string, object path or signature.
    public var text: String? {
        switch self {
        case let .string(s), let .objectPath(s), let .signature(s): return s
        default: return nil
        }
    }
}

/// A malformed message or value (from the peer, or a signature we cannot encode).
public struct DBusFormatError: Error, CustomStringConvertible, Equatable, Sendable {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { "D-Bus message: \(reason)" }
}

/// Alignment of a type by its signature's first character.
func dbusAlignment(_ code: Character) -> Int {
    switch code {
    case "y", "g", "v": return 1
    case "n", "q": return 2
    case "x", "t", "d", "(", "{": return 8
    default: return 4
    }
}

/// Appends values in little-endian D-Bus encoding. Offsets (for alignment) count from the start
/// of `bytes`, which is the start of a message or of its 8-aligned body.
struct DBusEncoder {
    var bytes: [UInt8] = []

    mutating func pad(_ alignment: Int) {
        while bytes.count % alignment != 0 { bytes.append(0) }
    }

    mutating func raw<T: FixedWidthInteger>(_ v: T) {
        pad(MemoryLayout<T>.size)
        withUnsafeBytes(of: v.littleEndian) { bytes += $0 }
    }

    mutating func text(_ s: String) {
        let b = Array(s.utf8)
        raw(UInt32(b.count)); bytes += b; bytes.append(0)
    }

    mutating func encode(_ v: DBusValue) throws {
        switch v {
        case let .byte(x): bytes.append(x)
        case let .bool(x): raw(UInt32(x ? 1 : 0))
        case let .int16(x): raw(x)
        case let .uint16(x): raw(x)
        case let .int32(x): raw(x)
        case let .uint32(x), let .unixFD(x): raw(x)
        case let .int64(x): raw(x)
        case let .uint64(x): raw(x)
        case let .double(x): raw(x.bitPattern)
        case let .string(s), let .objectPath(s): text(s)
        case let .signature(s):
            let b = Array(s.utf8)
            guard b.count < 256 else { throw DBusFormatError("signature longer than 255 bytes") }
            bytes.append(UInt8(b.count)); bytes += b; bytes.append(0)
        case let .array(element, items):
            guard let first = element.first else { throw DBusFormatError("array without an element type") }
            raw(UInt32(0))
            let lengthAt = bytes.count - 4
            pad(dbusAlignment(first))
            let start = bytes.count
            for item in items {
                guard item.signature == element else {
                    throw DBusFormatError("array of \(element) holds a \(item.signature)")
                }
                try encode(item)
            }
            let length = UInt32(bytes.count - start)
            withUnsafeBytes(of: length.littleEndian) { for i in 0..<4 { bytes[lengthAt + i] = $0[i] } }
        case let .structure(fields):
            pad(8)
            for f in fields { try encode(f) }
        case let .dictEntry(k, val):
            pad(8)
            try encode(k); try encode(val)
        case let .variant(inner):
            try encode(.signature(inner.signature))
            try encode(inner)
        }
    }
}

/// Reads values from a message (either byte order). Offsets count from the message start.
struct DBusDecoder {
    let bytes: [UInt8]
    var offset: Int
    let bigEndian: Bool

    init(_ bytes: [UInt8], offset: Int = 0, bigEndian: Bool = false) {
        self.bytes = bytes; self.offset = offset; self.bigEndian = bigEndian
    }

    mutating func align(_ a: Int) throws {
        let next = (offset + a - 1) / a * a
        guard next <= bytes.count else { throw DBusFormatError("truncated (padding at \(offset))") }
        offset = next
    }

    mutating func raw<T: FixedWidthInteger>(_: T.Type) throws -> T {
        let n = MemoryLayout<T>.size
        try align(n)
        guard offset + n <= bytes.count else { throw DBusFormatError("truncated (\(T.self) at \(offset))") }
        var v: T = 0
        for i in 0..<n {
            let b = T(truncatingIfNeeded: bytes[offset + (bigEndian ? n - 1 - i : i)])
            v |= b << (8 * i)
        }
        offset += n
        return v
    }

    mutating func text(length: Int) throws -> String {
        guard length >= 0, offset + length < bytes.count, bytes[offset + length] == 0 else {
            throw DBusFormatError("string of \(length) bytes at \(offset) is truncated or not nul-terminated")
        }
        let s = String(decoding: bytes[offset..<(offset + length)], as: UTF8.self)
        offset += length + 1
        return s
    }

    /// Decodes the values of a whole signature.
    mutating func decode(signature: String) throws -> [DBusValue] {
        var out: [DBusValue] = []
        var rest = Substring(signature)
        while !rest.isEmpty {
            let t = try Self.singleType(rest)
            out.append(try decode(type: t))
            rest = rest.dropFirst(t.count)
        }
        return out
    }

    /// The first complete type of a signature (`a{sv}` of `a{sv}u`).
    static func singleType(_ sig: Substring) throws -> Substring {
        guard let c = sig.first else { throw DBusFormatError("empty signature") }
        switch c {
        case "a":
            let inner = try singleType(sig.dropFirst())
            return sig.prefix(1 + inner.count)
        case "(", "{":
            let close: Character = c == "(" ? ")" : "}"
            var depth = 0
            for (i, ch) in sig.enumerated() {
                if ch == "(" || ch == "{" { depth += 1 }
                if ch == ")" || ch == "}" { depth -= 1 }
                if depth == 0 {
                    guard ch == close else { throw DBusFormatError("unbalanced signature \(sig)") }
                    return sig.prefix(i + 1)
                }
            }
            throw DBusFormatError("unbalanced signature \(sig)")
        case "y", "b", "n", "q", "i", "u", "x", "t", "d", "s", "o", "g", "h", "v":
            return sig.prefix(1)
        default:
            throw DBusFormatError("unknown type \(c) in signature \(sig)")
        }
    }

    mutating func decode(type: Substring) throws -> DBusValue {
        switch type.first! {
        case "y":
            guard offset < bytes.count else { throw DBusFormatError("truncated (byte at \(offset))") }
            offset += 1
            return .byte(bytes[offset - 1])
        case "b":
            let v = try raw(UInt32.self)
            guard v <= 1 else { throw DBusFormatError("boolean \(v)") }
            return .bool(v == 1)
        case "n": return .int16(Int16(bitPattern: try raw(UInt16.self)))
        case "q": return .uint16(try raw(UInt16.self))
        case "i": return .int32(Int32(bitPattern: try raw(UInt32.self)))
        case "u": return .uint32(try raw(UInt32.self))
        case "h": return .unixFD(try raw(UInt32.self))
        case "x": return .int64(Int64(bitPattern: try raw(UInt64.self)))
        case "t": return .uint64(try raw(UInt64.self))
        case "d": return .double(Double(bitPattern: try raw(UInt64.self)))
        case "s": return .string(try text(length: Int(try raw(UInt32.self))))
        case "o": return .objectPath(try text(length: Int(try raw(UInt32.self))))
        case "g":
            let n = try decode(type: "y")
            guard case let .byte(len) = n else { return .signature("") }
            return .signature(try text(length: Int(len)))
        case "v":
            guard case let .signature(sig) = try decode(type: "g") else { throw DBusFormatError("variant") }
            let t = try Self.singleType(Substring(sig))
            guard t.count == sig.count else { throw DBusFormatError("variant signature \(sig) is not one type") }
            return .variant(try decode(type: t))
        case "a":
            let length = Int(try raw(UInt32.self))
            let element = type.dropFirst()
            try align(dbusAlignment(element.first!))
            let end = offset + length
            guard length <= 1 << 26, end <= bytes.count else { throw DBusFormatError("array of \(length) bytes is truncated") }
            var items: [DBusValue] = []
            while offset < end { items.append(try decode(type: element)) }
            guard offset == end else { throw DBusFormatError("array elements overrun its length") }
            return .array(String(element), items)
        case "(":
            try align(8)
            var inner = DBusDecoder(bytes, offset: offset, bigEndian: bigEndian)
            let fields = try inner.decode(signature: String(type.dropFirst().dropLast()))
            offset = inner.offset
            return .structure(fields)
        case "{":
            try align(8)
            var inner = DBusDecoder(bytes, offset: offset, bigEndian: bigEndian)
            let kv = try inner.decode(signature: String(type.dropFirst().dropLast()))
            guard kv.count == 2 else { throw DBusFormatError("dict entry with \(kv.count) fields") }
            offset = inner.offset
            return .dictEntry(kv[0], kv[1])
        default:
            throw DBusFormatError("unknown type \(type)")
        }
    }
}

/// One D-Bus message.
public struct DBusMessage: Equatable, Sendable {
    public enum Kind: UInt8, Sendable { case methodCall = 1, methodReturn = 2, error = 3, signal = 4 }

    public var kind: Kind
    public var flags: UInt8 = 0
    public var serial: UInt32
    public var path: String?
    public var interface: String?
    public var member: String?
    public var errorName: String?
    public var replySerial: UInt32?
    public var destination: String?
    public var sender: String?
    public var body: [DBusValue] = []

    public init(kind: Kind, serial: UInt32, path: String? = nil, interface: String? = nil, member: String? = nil,
                destination: String? = nil, body: [DBusValue] = []) {
        self.kind = kind; self.serial = serial; self.path = path; self.interface = interface
        self.member = member; self.destination = destination; self.body = body
    }

    /// A method call.
    public static func call(serial: UInt32, destination: String?, path: String, interface: String, member: String,
                            body: [DBusValue] = []) -> DBusMessage {
        DBusMessage(kind: .methodCall, serial: serial, path: path, interface: interface, member: member,
                    destination: destination, body: body)
    }

    public var signature: String { body.map(\.signature).joined() }

    /// The little-endian wire bytes.
    public func encode() throws -> [UInt8] {
        var fields: [DBusValue] = []
        func field(_ code: UInt8, _ v: DBusValue?) { if let v { fields.append(.structure([.byte(code), .variant(v)])) } }
        field(1, path.map(DBusValue.objectPath))
        field(2, interface.map(DBusValue.string))
        field(3, member.map(DBusValue.string))
        field(4, errorName.map(DBusValue.string))
        field(5, replySerial.map(DBusValue.uint32))
        field(6, destination.map(DBusValue.string))
        field(7, sender.map(DBusValue.string))
        if !body.isEmpty { field(8, .signature(signature)) }
        var bodyEncoder = DBusEncoder()
        for v in body { try bodyEncoder.encode(v) }
        var e = DBusEncoder()
        e.bytes = [UInt8(ascii: "l"), kind.rawValue, flags, 1]
        e.raw(UInt32(bodyEncoder.bytes.count))
        e.raw(serial)
        try e.encode(.array("(yv)", fields))
        e.pad(8)
        return e.bytes + bodyEncoder.bytes
    }

    /// The total length of the message whose first 16 bytes are `head`, or nil when more bytes
    /// are needed to tell.
    public static func length(ofMessageStartingWith head: ArraySlice<UInt8>) throws -> Int? {
        guard head.count >= 16 else { return nil }
        let h = Array(head.prefix(16))
        guard h[0] == UInt8(ascii: "l") || h[0] == UInt8(ascii: "B") else { throw DBusFormatError("bad byte order \(h[0])") }
        var d = DBusDecoder(h, offset: 4, bigEndian: h[0] == UInt8(ascii: "B"))
        let bodyLength = Int(try d.raw(UInt32.self))
        _ = try d.raw(UInt32.self)
        let fieldsLength = Int(try d.raw(UInt32.self))
        guard bodyLength <= 1 << 27, fieldsLength <= 1 << 26 else { throw DBusFormatError("message too long") }
        return (16 + fieldsLength + 7) / 8 * 8 + bodyLength
    }

    /// Parses one complete message.
    public static func decode(_ bytes: [UInt8]) throws -> DBusMessage {
        guard let total = try length(ofMessageStartingWith: bytes[...]), total == bytes.count else {
            throw DBusFormatError("message length does not match its header")
        }
        guard let kind = Kind(rawValue: bytes[1]) else { throw DBusFormatError("unknown message type \(bytes[1])") }
        var d = DBusDecoder(bytes, offset: 4, bigEndian: bytes[0] == UInt8(ascii: "B"))
        let bodyLength = Int(try d.raw(UInt32.self))
        var m = DBusMessage(kind: kind, serial: try d.raw(UInt32.self))
        m.flags = bytes[2]
        guard case let .array(_, fields) = try d.decode(type: "a(yv)") else { throw DBusFormatError("header fields") }
        var signature = ""
        for f in fields {
            guard case let .structure(kv) = f, case let .byte(code) = kv[0], case let .variant(v) = kv[1] else { continue }
            switch code {
            case 1: m.path = v.text
            case 2: m.interface = v.text
            case 3: m.member = v.text
            case 4: m.errorName = v.text
            case 5: if case let .uint32(s) = v { m.replySerial = s }
            case 6: m.destination = v.text
            case 7: m.sender = v.text
            case 8: signature = v.text ?? ""
            default: break
            }
        }
        try d.align(8)
        guard d.offset + bodyLength == bytes.count else { throw DBusFormatError("body length") }
        m.body = try d.decode(signature: signature)
        guard d.offset == bytes.count else { throw DBusFormatError("body is longer than its signature \(signature)") }
        return m
    }
}
