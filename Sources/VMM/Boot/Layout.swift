import BrigGuestMemory

/// Typed loader errors; each names the field and value that was rejected.
public enum BootError: Error, Equatable, CustomStringConvertible {
    case imageTooSmall(what: String, size: Int, needed: Int)
    case badMagic(what: String, found: UInt64)
    case unsupported(field: String, value: UInt64)
    case segmentOutOfImage(index: Int, offset: UInt64, size: UInt64, imageSize: Int)
    case segmentOutOfMemory(index: Int, address: UInt64, size: UInt64)
    case segmentFileSizeExceedsMemSize(index: Int, fileSize: UInt64, memSize: UInt64)
    case noLoadableSegments
    case cmdlineTooLong(length: Int, max: Int)
    case cmdlineContainsNUL
    case initrdDoesNotFit(size: UInt64, limit: UInt64)
    case kernelOverlapsBootData(address: UInt64)
    case tooManyE820Entries(Int)
    case memory(GuestMemoryError)

    public var description: String {
        func h(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
        switch self {
        case let .imageTooSmall(w, s, n): return "\(w): image is \(s) bytes, need at least \(n)"
        case let .badMagic(w, f): return "\(w): bad magic \(h(f))"
        case let .unsupported(f, v): return "unsupported \(f) = \(h(v))"
        case let .segmentOutOfImage(i, o, s, n): return "ELF segment \(i): file range \(h(o))+\(h(s)) exceeds image size \(n)"
        case let .segmentOutOfMemory(i, a, s): return "ELF segment \(i): guest range \(h(a))+\(h(s)) is outside guest RAM"
        case let .segmentFileSizeExceedsMemSize(i, f, m): return "ELF segment \(i): p_filesz \(h(f)) > p_memsz \(h(m))"
        case .noLoadableSegments: return "ELF has no PT_LOAD segments"
        case let .cmdlineTooLong(l, m): return "kernel command line is \(l) bytes, limit \(m)"
        case .cmdlineContainsNUL: return "kernel command line contains a NUL byte"
        case let .initrdDoesNotFit(s, l): return "initrd of \(s) bytes does not fit below \(h(l))"
        case let .kernelOverlapsBootData(a): return "kernel is loaded at \(h(a)), below the 1 MiB boot-data area"
        case let .tooManyE820Entries(n): return "\(n) e820 entries, the zero page holds 128"
        case let .memory(e): return e.description
        }
    }
}

/// Fixed guest-physical addresses used by brig's x86_64 boot (Firecracker-like low layout).
public enum BootLayout {
    public static let gdtAddress: UInt64 = 0x500
    public static let idtAddress: UInt64 = 0x520
    public static let pvhStartInfo: UInt64 = 0x6000
    public static let pvhMemmap: UInt64 = 0x6040
    public static let pvhModlist: UInt64 = 0x6e00
    public static let zeroPage: UInt64 = 0x7000
    public static let bootStack: UInt64 = 0x8ff0
    public static let pml4: UInt64 = 0x9000
    public static let pdpt: UInt64 = 0xA000
    /// Four page directories (2 MiB pages) identity-map the first 4 GiB.
    public static let pageDirectories: UInt64 = 0xB000
    public static let cmdline: UInt64 = 0x20000
    public static let cmdlineMax: Int = 0x10000 - 1
    public static let ebdaStart: UInt64 = 0x9FC00
    public static let highMemory: UInt64 = 0x100000
    /// MMIO devices live here, below 4 GiB; RAM never overlaps it.
    public static let mmioHoleStart: UInt64 = 0xC000_0000
}

/// One e820 map entry.
public struct E820Entry: Equatable, Sendable {
    public enum Kind: UInt32, Sendable { case ram = 1, reserved = 2 }
    public var address: UInt64
    public var size: UInt64
    public var kind: Kind
    public init(address: UInt64, size: UInt64, kind: Kind) {
        self.address = address; self.size = size; self.kind = kind
    }

    /// The map brig presents: low RAM up to the EBDA, a reserved BIOS hole, then each RAM region.
    public static func map(for memory: GuestMemory) -> [E820Entry] {
        var out = [E820Entry(address: 0, size: BootLayout.ebdaStart, kind: .ram),
                   E820Entry(address: BootLayout.ebdaStart, size: BootLayout.highMemory - BootLayout.ebdaStart, kind: .reserved)]
        for r in memory.regions {
            let start = max(r.guestBase, BootLayout.highMemory)
            if r.guestEnd > start { out.append(E820Entry(address: start, size: r.guestEnd - start, kind: .ram)) }
        }
        return out
    }
}

/// Kernel command line builder: validates length and NULs, writes a NUL-terminated string.
public struct KernelCmdline: Sendable, Equatable {
    public private(set) var text: String
    public init(_ text: String = "") { self.text = text }

    public mutating func append(_ part: String) {
        guard !part.isEmpty else { return }
        text = text.isEmpty ? part : text + " " + part
    }

    /// NUL-terminated bytes; rejects NULs and overlong lines.
    public func bytes(max: Int = BootLayout.cmdlineMax) throws(BootError) -> [UInt8] {
        let b = Array(text.utf8)
        if b.contains(0) { throw .cmdlineContainsNUL }
        if b.count > max { throw .cmdlineTooLong(length: b.count, max: max) }
        return b + [0]
    }
}

extension GuestMemory {
    /// Memory access for the loader, mapping memory errors into BootError.
    func put(_ bytes: some Collection<UInt8>, at a: UInt64) throws(BootError) {
        do { try write(bytes, at: a) } catch { throw .memory(error) }
    }
    /// One memcpy of a file's (mapped) bytes.
    func put(raw bytes: UnsafeRawBufferPointer, at a: UInt64) throws(BootError) {
        do { try slice(a, length: UInt64(bytes.count)).copyMemory(from: bytes) } catch { throw .memory(error) }
    }
    func put<T: FixedWidthInteger>(_ v: T, at a: UInt64) throws(BootError) {
        do { try store(v, at: a) } catch { throw .memory(error) }
    }
}

/// Little-endian reads from an image with bounds checks.
struct ImageReader {
    let bytes: UnsafeRawBufferPointer
    let what: String
    func u<T: FixedWidthInteger>(_: T.Type, _ off: Int) throws(BootError) -> T {
        let n = MemoryLayout<T>.size
        guard off >= 0, off <= bytes.count - n else { throw .imageTooSmall(what: what, size: bytes.count, needed: off + n) }
        var v: T = 0
        for i in 0..<n { v |= T(bytes[off + i]) << (8 * i) }
        return v
    }
}
