/// The compact binary form of the sync messages between the parent and `brig init` (SyncChannel),
/// instead of JSON: the init then runs no Codable code at all. Codable's generic containers cost
/// each fresh process the Swift runtime's first-use metadata instantiation and protocol
/// conformance lookups (measured: half of the init's user time went to decoding the plan; see
/// docs/performance.md). Both ends are the same binary, so the format has no versioning.
///
/// Integers are 8 bytes little-endian, Bool 1 byte, a String its UTF-8 length and bytes, an
/// Optional a 0/1 byte and the value, an Array its count and elements. The reader checks every
/// length against what is left and names the field it was reading when the message is short.
struct WireWriter {
    var bytes: [UInt8] = []

    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func i64(_ v: Int64) { u64(UInt64(bitPattern: v)) }
    mutating func int(_ v: Int) { i64(Int64(v)) }
    mutating func uint(_ v: UInt) { u64(UInt64(v)) }
    mutating func u32(_ v: UInt32) { u64(UInt64(v)) }
    mutating func i32(_ v: Int32) { i64(Int64(v)) }
    mutating func byte(_ v: UInt8) { bytes.append(v) }
    mutating func bool(_ v: Bool) { bytes.append(v ? 1 : 0) }
    mutating func str(_ s: String) { u64(UInt64(s.utf8.count)); bytes.append(contentsOf: s.utf8) }
    mutating func strs(_ a: [String]) { u64(UInt64(a.count)); for s in a { str(s) } }
    mutating func u64s(_ a: [UInt64]) { u64(UInt64(a.count)); for v in a { u64(v) } }
    mutating func opt<T>(_ v: T?, _ write: (inout WireWriter, T) -> Void) {
        if let v { byte(1); write(&self, v) } else { byte(0) }
    }
    mutating func list<T>(_ a: [T], _ write: (inout WireWriter, T) -> Void) {
        u64(UInt64(a.count)); for v in a { write(&self, v) }
    }
    mutating func dict<V>(_ d: [String: V], _ write: (inout WireWriter, V) -> Void) {
        u64(UInt64(d.count)); for (k, v) in d { str(k); write(&self, v) }
    }
}

struct WireReader {
    let bytes: [UInt8]
    var at = 0
    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var isAtEnd: Bool { at == bytes.count }

    func short(_ field: String) -> InitError {
        InitError("sync message: \(field): truncated at byte \(at) of \(bytes.count)")
    }
    mutating func u64(_ field: String) throws(InitError) -> UInt64 {
        guard bytes.count - at >= 8 else { throw short(field) }
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(bytes[at + i]) << (8 * UInt64(i)) }
        at += 8
        return v
    }
    mutating func i64(_ field: String) throws(InitError) -> Int64 { Int64(bitPattern: try u64(field)) }
    mutating func int(_ field: String) throws(InitError) -> Int { Int(try i64(field)) }
    mutating func uint(_ field: String) throws(InitError) -> UInt { UInt(try u64(field)) }
    mutating func u32(_ field: String) throws(InitError) -> UInt32 {
        let v = try u64(field)
        guard let r = UInt32(exactly: v) else { throw InitError("sync message: \(field): \(v) out of range") }
        return r
    }
    mutating func i32(_ field: String) throws(InitError) -> Int32 {
        let v = try i64(field)
        guard let r = Int32(exactly: v) else { throw InitError("sync message: \(field): \(v) out of range") }
        return r
    }
    mutating func u16(_ field: String) throws(InitError) -> UInt16 {
        let v = try u64(field)
        guard let r = UInt16(exactly: v) else { throw InitError("sync message: \(field): \(v) out of range") }
        return r
    }
    mutating func byte(_ field: String) throws(InitError) -> UInt8 {
        guard at < bytes.count else { throw short(field) }
        at += 1
        return bytes[at - 1]
    }
    mutating func bool(_ field: String) throws(InitError) -> Bool {
        switch try byte(field) {
        case 0: return false
        case 1: return true
        case let b: throw InitError("sync message: \(field): \(b) is not a Bool")
        }
    }
    /// An element count, at most what the rest of the message could hold (one byte each).
    mutating func count(_ field: String) throws(InitError) -> Int {
        let n = try u64(field)
        guard n <= UInt64(bytes.count - at) else { throw short(field) }
        return Int(n)
    }
    mutating func str(_ field: String) throws(InitError) -> String {
        let n = try count(field)
        defer { at += n }
        return String(decoding: bytes[at..<at + n], as: UTF8.self)
    }
    mutating func strs(_ field: String) throws(InitError) -> [String] {
        try list(field) { r throws(InitError) in try r.str(field) }
    }
    mutating func u64s(_ field: String) throws(InitError) -> [UInt64] {
        try list(field) { r throws(InitError) in try r.u64(field) }
    }
    mutating func opt<T>(_ field: String, _ read: (inout WireReader) throws(InitError) -> T) throws(InitError) -> T? {
        try bool(field) ? try read(&self) : nil
    }
    mutating func list<T>(_ field: String, _ read: (inout WireReader) throws(InitError) -> T) throws(InitError) -> [T] {
        let n = try count(field)
        var out: [T] = []
        // n is bounded by the bytes left, not by what n elements take in memory.
        out.reserveCapacity(min(n, 256))
        for _ in 0..<n { out.append(try read(&self)) }
        return out
    }
    mutating func dict<V>(_ field: String, _ read: (inout WireReader) throws(InitError) -> V) throws(InitError) -> [String: V] {
        let n = try count(field)
        var out: [String: V] = [:]
        for _ in 0..<n {
            let k = try str(field)
            out[k] = try read(&self)
        }
        return out
    }
}

extension SyncMessage {
    /// The message as one packet: a tag byte, then the payload.
    var wire: [UInt8] {
        var w = WireWriter()
        switch self {
        case .plan(let p): w.byte(0); p.write(&w)
        case .placed: w.byte(1)
        case .mapUser: w.byte(2)
        case .mapped: w.byte(3)
        case .childPid(let pid): w.byte(4); w.i32(pid)
        case .runtimeHooks: w.byte(5)
        case .hooksDone(let json): w.byte(6); w.str(json)
        case .ready: w.byte(7)
        case .seccompFD: w.byte(8)
        case .error(let message): w.byte(9); w.str(message)
        }
        return w.bytes
    }

    init(wire bytes: [UInt8]) throws(InitError) {
        var r = WireReader(bytes)
        switch try r.byte("message tag") {
        case 0: self = .plan(try LaunchPlan(&r))
        case 1: self = .placed
        case 2: self = .mapUser
        case 3: self = .mapped
        case 4: self = .childPid(try r.i32("childPid"))
        case 5: self = .runtimeHooks
        case 6: self = .hooksDone(try r.str("hooksDone"))
        case 7: self = .ready
        case 8: self = .seccompFD
        case 9: self = .error(try r.str("error"))
        case let t: throw InitError("sync message: unknown tag \(t)")
        }
        guard r.isAtEnd else { throw InitError("sync message: \(bytes.count - r.at) bytes after the message") }
    }
}
