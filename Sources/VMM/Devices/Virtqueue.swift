import BrigGuestMemory
import Synchronization

/// Why a virtqueue operation was refused. Hostile or buggy guests must end up here, never
/// in an out-of-bounds host access.
public enum VirtqueueError: Error, Equatable, CustomStringConvertible {
    case notReady
    case invalidSize(size: UInt16, max: UInt16)
    case misaligned(ring: String, address: UInt64)
    case ringOutOfBounds(ring: String, address: UInt64, length: UInt64)
    case availIndexJump(availIdx: UInt16, lastSeen: UInt16, size: UInt16)
    case descriptorIndexOutOfRange(index: UInt16, size: UInt16)
    case chainTooLong(head: UInt16, limit: Int)
    case bufferOutOfBounds(index: UInt16, address: UInt64, length: UInt32)
    case indirectNotNegotiated(index: UInt16)
    case readableAfterWritable(index: UInt16)
    case memory(GuestMemoryError)

    public var description: String {
        func h(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
        switch self {
        case .notReady: return "virtqueue is not ready"
        case let .invalidSize(s, m): return "virtqueue size \(s) is not a power of two <= \(m)"
        case let .misaligned(r, a): return "virtqueue \(r) address \(h(a)) is misaligned"
        case let .ringOutOfBounds(r, a, l): return "virtqueue \(r) at \(h(a))+\(h(l)) is outside guest RAM"
        case let .availIndexJump(i, l, s): return "avail idx \(i) is more than \(s) ahead of \(l)"
        case let .descriptorIndexOutOfRange(i, s): return "descriptor index \(i) >= queue size \(s)"
        case let .chainTooLong(h, l): return "descriptor chain from head \(h) exceeds \(l) entries (loop?)"
        case let .bufferOutOfBounds(i, a, l): return "descriptor \(i) buffer \(h(a))+\(h(UInt64(l))) is outside guest RAM"
        case let .indirectNotNegotiated(i): return "descriptor \(i) is INDIRECT but VIRTIO_F_INDIRECT_DESC was not offered"
        case let .readableAfterWritable(i): return "descriptor \(i) is device-readable after a device-writable one"
        case let .memory(e): return e.description
        }
    }
}

/// One buffer of a descriptor chain, already checked to lie inside guest RAM.
public struct DescriptorBuffer: Equatable, Sendable {
    public var address: UInt64
    public var length: UInt32
    public var writable: Bool
}

public struct DescriptorChain: Equatable, Sendable {
    public var head: UInt16
    public var buffers: [DescriptorBuffer]
    public var readable: [DescriptorBuffer] { buffers.filter { !$0.writable } }
    public var writable: [DescriptorBuffer] { buffers.filter { $0.writable } }
}

/// A split virtqueue (virtio 1.x, section 2.7) driven by the device side.
public struct Virtqueue: Sendable {
    public static let descNext: UInt16 = 1, descWrite: UInt16 = 2, descIndirect: UInt16 = 4

    public let maxSize: UInt16
    public var size: UInt16
    public var ready = false
    public var descTable: UInt64 = 0
    public var availRing: UInt64 = 0
    public var usedRing: UInt64 = 0
    public private(set) var nextAvail: UInt16 = 0
    public private(set) var nextUsed: UInt16 = 0

    public init(maxSize: UInt16) {
        self.maxSize = maxSize
        self.size = maxSize
    }

    public mutating func reset() {
        self = Virtqueue(maxSize: maxSize)
    }

    /// Checks size, alignment and that all three rings lie in guest RAM.
    public func validate(_ mem: GuestMemory) throws(VirtqueueError) {
        guard size > 0, size <= maxSize, size & (size - 1) == 0 else { throw .invalidSize(size: size, max: maxSize) }
        let n = UInt64(size)
        let rings: [(String, UInt64, UInt64, UInt64)] = [
            ("descriptor table", descTable, 16 * n, 16),
            ("available ring", availRing, 6 + 2 * n, 2),
            ("used ring", usedRing, 6 + 8 * n, 4),
        ]
        for (name, addr, len, align) in rings {
            guard addr % align == 0 else { throw .misaligned(ring: name, address: addr) }
            guard mem.isValid(addr, length: len) else { throw .ringOutOfBounds(ring: name, address: addr, length: len) }
        }
    }

    private func load<T: FixedWidthInteger>(_ mem: GuestMemory, _ a: UInt64, _: T.Type = T.self) throws(VirtqueueError) -> T {
        do { return try mem.load(T.self, at: a) } catch { throw .memory(error) }
    }

    /// Number of chains the driver has made available and we have not consumed.
    public func pending(_ mem: GuestMemory) throws(VirtqueueError) -> UInt16 {
        guard ready else { throw .notReady }
        let idx: UInt16 = try load(mem, availRing + 2)
        let n = idx &- nextAvail
        guard n <= size else { throw .availIndexJump(availIdx: idx, lastSeen: nextAvail, size: size) }
        return n
    }

    /// Takes the next available chain, validating every descriptor; nil when none is pending.
    public mutating func pop(_ mem: GuestMemory) throws(VirtqueueError) -> DescriptorChain? {
        guard try pending(mem) > 0 else { return nil }
        atomicMemoryFence(ordering: .acquiring)
        let slot = UInt64(nextAvail % size)
        let head: UInt16 = try load(mem, availRing + 4 + 2 * slot)
        nextAvail &+= 1
        return try walk(mem, head: head)
    }

    /// Gives back the chain taken by the last `pop` (the device found nothing to put in it).
    public mutating func undoPop() { nextAvail &-= 1 }

    /// Follows a chain from `head`: indices in range, at most `size` entries (so loops end),
    /// every buffer inside guest RAM, readable buffers before writable ones.
    public func walk(_ mem: GuestMemory, head: UInt16) throws(VirtqueueError) -> DescriptorChain {
        var buffers: [DescriptorBuffer] = []
        var index = head
        var sawWritable = false
        while true {
            guard index < size else { throw .descriptorIndexOutOfRange(index: index, size: size) }
            guard buffers.count < Int(size) else { throw .chainTooLong(head: head, limit: Int(size)) }
            let d = descTable + 16 * UInt64(index)
            let addr: UInt64 = try load(mem, d)
            let len: UInt32 = try load(mem, d + 8)
            let flags: UInt16 = try load(mem, d + 12)
            let next: UInt16 = try load(mem, d + 14)
            if flags & Self.descIndirect != 0 { throw .indirectNotNegotiated(index: index) }
            guard mem.isValid(addr, length: UInt64(len)) else { throw .bufferOutOfBounds(index: index, address: addr, length: len) }
            let w = flags & Self.descWrite != 0
            if !w, sawWritable { throw .readableAfterWritable(index: index) }
            sawWritable = sawWritable || w
            buffers.append(DescriptorBuffer(address: addr, length: len, writable: w))
            if flags & Self.descNext == 0 { break }
            index = next
        }
        return DescriptorChain(head: head, buffers: buffers)
    }

    /// Serves every chain the driver made available, in order: `serve` returns the bytes it wrote
    /// into the chain's writable buffers, and the chain is returned used with that length. True
    /// when at least one chain was used (the driver is to be notified).
    public mutating func drain(_ mem: GuestMemory, _ serve: (DescriptorChain) -> UInt32) throws(VirtqueueError) -> Bool {
        var used = false
        while let chain = try pop(mem) {
            try pushUsed(mem, head: chain.head, length: serve(chain))
            used = true
        }
        return used
    }

    /// Returns a chain to the driver with `length` bytes written into its writable buffers.
    public mutating func pushUsed(_ mem: GuestMemory, head: UInt16, length: UInt32) throws(VirtqueueError) {
        let slot = UInt64(nextUsed % size)
        do {
            try mem.store(UInt32(head), at: usedRing + 4 + 8 * slot)
            try mem.store(length, at: usedRing + 8 + 8 * slot)
            atomicMemoryFence(ordering: .releasing)
            nextUsed &+= 1
            try mem.store(nextUsed, at: usedRing + 2)
        } catch { throw .memory(error) }
    }
}
