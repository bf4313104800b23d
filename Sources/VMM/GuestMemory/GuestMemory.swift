import BrigLinux
#if canImport(Glibc)
import Glibc
#endif

/// Errors from guest-memory access. Every access is bounds-checked and overflow-safe.
public enum GuestMemoryError: Error, Equatable, CustomStringConvertible {
    /// `[address, address+length)` is not fully inside one region.
    case outOfBounds(address: UInt64, length: UInt64)
    /// `address + length` overflows 64 bits.
    case addressOverflow(address: UInt64, length: UInt64)
    /// A region layout was rejected (overlap, zero size, unaligned).
    case invalidLayout(String)
    /// mmap(2) of the backing store failed.
    case mmapFailed(SystemError)

    public var description: String {
        switch self {
        case let .outOfBounds(a, l):
            return "guest memory access [0x\(String(a, radix: 16)), +0x\(String(l, radix: 16))) is outside guest RAM"
        case let .addressOverflow(a, l):
            return "guest address 0x\(String(a, radix: 16)) + length 0x\(String(l, radix: 16)) overflows"
        case let .invalidLayout(why): return "invalid guest memory layout: \(why)"
        case let .mmapFailed(e): return e.description
        }
    }
}

/// One contiguous range of guest-physical memory backed by host memory.
public final class GuestRegion: @unchecked Sendable {
    public let guestBase: UInt64
    public let size: UInt64
    public let host: UnsafeMutableRawPointer
    private let owned: Bool

    /// Host alignment of guest RAM: a transparent huge page.
    public static let hugePage = 2 << 20

    /// Anonymous, private, zero-filled mapping, placed on a 2 MiB boundary of the host's address
    /// space (as QEMU places guest RAM): where the host's THP policy gives the VMM huge pages, KVM
    /// can then map the guest's 2 MiB ranges with huge pages in the nested page tables, instead of
    /// taking a 4 KiB fault per page the guest touches (expensive above all when nested). Whether
    /// huge pages are used stays the host's policy (`transparent_hugepage/enabled`).
    public init(guestBase: UInt64, size: UInt64) throws(GuestMemoryError) {
        guard size > 0, size % 4096 == 0 else { throw .invalidLayout("region size 0x\(String(size, radix: 16)) must be a non-zero multiple of 4 KiB") }
        guard guestBase % 4096 == 0 else { throw .invalidLayout("region base 0x\(String(guestBase, radix: 16)) must be 4 KiB aligned") }
        guard guestBase.addingReportingOverflow(size).overflow == false else { throw .addressOverflow(address: guestBase, length: size) }
        let align = Self.hugePage
        guard let raw = mmap(nil, Int(size) + align, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0),
              raw != MAP_FAILED else { throw .mmapFailed(.last("mmap of \(size) bytes of guest memory")) }
        // Keep the aligned `size` bytes; give back the slack before and after them.
        let start = (UInt(bitPattern: raw) + UInt(align - 1)) & ~UInt(align - 1)
        let head = Int(start - UInt(bitPattern: raw))
        if head > 0 { munmap(raw, head) }
        if align - head > 0 { munmap(raw + head + Int(size), align - head) }
        let p = raw + head
        self.guestBase = guestBase
        self.size = size
        self.host = p
        self.owned = true
    }

    deinit {
        if owned { munmap(host, Int(size)) }
    }

    /// End address (exclusive).
    public var guestEnd: UInt64 { guestBase + size }

    func contains(_ address: UInt64, _ length: UInt64) -> Bool {
        guard address >= guestBase else { return false }
        let off = address - guestBase
        return off <= size && length <= size - off
    }
}

/// The guest's physical memory: a set of non-overlapping regions.
/// Consumers (loader, devices) only see this type, never KVM.
public final class GuestMemory: @unchecked Sendable {
    public let regions: [GuestRegion]

    public init(regions: [GuestRegion]) throws(GuestMemoryError) {
        // Insertion sort: one or two regions, and the stdlib's sort is more text to fault in at boot.
        var sorted = regions
        for i in sorted.indices.dropFirst() {
            var j = i
            while j > 0 && sorted[j - 1].guestBase > sorted[j].guestBase { sorted.swapAt(j - 1, j); j -= 1 }
        }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.guestEnd > b.guestBase {
            throw .invalidLayout("regions at 0x\(String(a.guestBase, radix: 16)) and 0x\(String(b.guestBase, radix: 16)) overlap")
        }
        self.regions = sorted
    }

    /// RAM of `size` bytes starting at guest address 0, split around the 32-bit MMIO hole
    /// `[mmioHoleStart, 4 GiB)` when it does not fit below it.
    public static func withHole(size: UInt64, mmioHoleStart: UInt64 = 0xC000_0000) throws(GuestMemoryError) -> GuestMemory {
        if size <= mmioHoleStart {
            return try GuestMemory(regions: [GuestRegion(guestBase: 0, size: size)])
        }
        return try GuestMemory(regions: [
            GuestRegion(guestBase: 0, size: mmioHoleStart),
            GuestRegion(guestBase: 0x1_0000_0000, size: size - mmioHoleStart),
        ])
    }

    /// Total bytes of RAM.
    public var totalSize: UInt64 { regions.reduce(0) { $0 + $1.size } }

    /// Highest RAM address below 4 GiB (exclusive end of the first region).
    public var lowMemoryEnd: UInt64 { regions.first?.guestEnd ?? 0 }

    /// A host pointer for `[address, address+length)`, which must lie in one region.
    public func hostPointer(_ address: UInt64, length: UInt64) throws(GuestMemoryError) -> UnsafeMutableRawPointer {
        guard address.addingReportingOverflow(length).overflow == false else {
            throw .addressOverflow(address: address, length: length)
        }
        for r in regions where r.contains(address, length) {
            return r.host + Int(address - r.guestBase)
        }
        throw .outOfBounds(address: address, length: length)
    }

    /// True when the whole range is guest RAM.
    public func isValid(_ address: UInt64, length: UInt64) -> Bool {
        (try? hostPointer(address, length: length)) != nil
    }

    /// A mutable view of guest memory. Valid as long as this GuestMemory lives.
    public func slice(_ address: UInt64, length: UInt64) throws(GuestMemoryError) -> UnsafeMutableRawBufferPointer {
        let p = try hostPointer(address, length: length)
        return UnsafeMutableRawBufferPointer(start: p, count: Int(length))
    }

    public func write(_ bytes: some Collection<UInt8>, at address: UInt64) throws(GuestMemoryError) {
        let dst = try slice(address, length: UInt64(bytes.count))
        dst.copyBytes(from: bytes)
    }

    public func read(_ address: UInt64, count: Int) throws(GuestMemoryError) -> [UInt8] {
        let src = try slice(address, length: UInt64(count))
        return Array(src)
    }

    /// Reads a little-endian integer (unaligned accesses allowed).
    public func load<T: FixedWidthInteger>(_: T.Type = T.self, at address: UInt64) throws(GuestMemoryError) -> T {
        let p = try hostPointer(address, length: UInt64(MemoryLayout<T>.size))
        return T(littleEndian: p.loadUnaligned(as: T.self))
    }

    /// Writes a little-endian integer (unaligned accesses allowed).
    public func store<T: FixedWidthInteger>(_ value: T, at address: UInt64) throws(GuestMemoryError) {
        let p = try hostPointer(address, length: UInt64(MemoryLayout<T>.size))
        p.storeBytes(of: value.littleEndian, as: T.self)
    }

    /// Gives the whole 4 KiB pages inside `[address, address+length)` (one region's) back to the
    /// host: madvise(MADV_DONTNEED) on the private anonymous mapping, so the VMM's RSS no longer
    /// counts them and they read as zeros when next touched. Returns the bytes given back.
    @discardableResult
    public func discard(_ address: UInt64, length: UInt64) throws(GuestMemoryError) -> UInt64 {
        let p = try hostPointer(address, length: length)
        let page: UInt64 = 4096
        let start = (address &+ page &- 1) & ~(page - 1), end = (address + length) & ~(page - 1)
        guard start >= address, end > start else { return 0 }
        let host = p + Int(start - address)
        // (Cannot fail on a mapping of ours; zeroing keeps the promise if it ever does.)
        if madvise(host, Int(end - start), MADV_DONTNEED) != 0 { memset(host, 0, Int(end - start)) }
        return end - start
    }

    /// Fills a range with zero bytes.
    public func zero(_ address: UInt64, length: UInt64) throws(GuestMemoryError) {
        let dst = try slice(address, length: length)
        if let base = dst.baseAddress { memset(base, 0, dst.count) }
    }
}
