/// The virtio-vsock packet header (virtio 1.x section 5.10.6), 44 bytes, little-endian.
public struct VsockHeader: Equatable, Sendable {
    public static let size = 44
    public static let typeStream: UInt16 = 1
    public enum Op: UInt16, Sendable {
        case request = 1, response, rst, shutdown, rw, creditUpdate, creditRequest
    }
    /// SHUTDOWN flags.
    public static let shutdownRcv: UInt32 = 1, shutdownSend: UInt32 = 2

    public var srcCID: UInt64 = 0, dstCID: UInt64 = 0
    public var srcPort: UInt32 = 0, dstPort: UInt32 = 0
    public var len: UInt32 = 0
    public var type: UInt16 = VsockHeader.typeStream
    public var op: UInt16 = 0
    public var flags: UInt32 = 0
    public var bufAlloc: UInt32 = 0, fwdCnt: UInt32 = 0

    public init(srcCID: UInt64 = 0, dstCID: UInt64 = 0, srcPort: UInt32 = 0, dstPort: UInt32 = 0, len: UInt32 = 0,
                type: UInt16 = VsockHeader.typeStream, op: Op, flags: UInt32 = 0, bufAlloc: UInt32 = 0, fwdCnt: UInt32 = 0) {
        self.srcCID = srcCID; self.dstCID = dstCID; self.srcPort = srcPort; self.dstPort = dstPort; self.len = len
        self.type = type; self.op = op.rawValue; self.flags = flags; self.bufAlloc = bufAlloc; self.fwdCnt = fwdCnt
    }

    /// Parses the first 44 bytes; nil when fewer are given.
    public init?(_ b: some Collection<UInt8>) {
        let a = Array(b.prefix(Self.size))
        guard a.count == Self.size else { return nil }
        func le<T: FixedWidthInteger>(_ off: Int, _: T.Type) -> T {
            var v: T = 0
            for i in 0..<MemoryLayout<T>.size { v |= T(a[off + i]) << (8 * i) }
            return v
        }
        srcCID = le(0, UInt64.self); dstCID = le(8, UInt64.self)
        srcPort = le(16, UInt32.self); dstPort = le(20, UInt32.self); len = le(24, UInt32.self)
        type = le(28, UInt16.self); op = le(30, UInt16.self); flags = le(32, UInt32.self)
        bufAlloc = le(36, UInt32.self); fwdCnt = le(40, UInt32.self)
    }

    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(Self.size)
        func put<T: FixedWidthInteger>(_ v: T) { for i in 0..<MemoryLayout<T>.size { out.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
        put(srcCID); put(dstCID); put(srcPort); put(dstPort); put(len); put(type); put(op); put(flags); put(bufAlloc); put(fwdCnt)
        return out
    }

    public var knownOp: Op? { Op(rawValue: op) }
}

/// Guest-side credit bookkeeping of one connection (section 5.10.6.3): how many more bytes
/// may be sent to the peer without overrunning the buffer space it advertised.
public struct VsockCredit: Equatable, Sendable {
    public var peerBufAlloc: UInt32 = 0
    public var peerFwdCnt: UInt32 = 0
    /// Bytes sent to the peer so far (wrapping).
    public var sent: UInt32 = 0
    public init() {}
    public mutating func update(from h: VsockHeader) { peerBufAlloc = h.bufAlloc; peerFwdCnt = h.fwdCnt }
    /// Free peer buffer space; 0 when the peer's counters are inconsistent.
    public var available: UInt32 {
        let inFlight = sent &- peerFwdCnt
        return inFlight > peerBufAlloc ? 0 : peerBufAlloc - inFlight
    }
}

/// One vsock packet: the header and, for RW, its payload (`header.len` bytes when well formed).
public struct VsockPacket: Equatable, Sendable {
    public var header: VsockHeader
    public var payload: [UInt8]
    public init(_ header: VsockHeader, _ payload: [UInt8] = []) { self.header = header; self.payload = payload }
}

/// What the virtio-vsock device hands packets to and takes them from (Firecracker's
/// VsockBackend/VsockChannel). The device is only the virtio side; a backend owns the
/// connections. `send` and `receive` run on whichever thread services the queues — a vCPU's
/// exit path — so a backend must not block or do host I/O in them: it queues, and does its
/// I/O on a thread of its own (VsockMuxer), telling the transport when rx packets wait.
public protocol VsockBackend: AnyObject, Sendable {
    /// A packet the guest put on the tx queue. The payload holds what the chain carried, up
    /// to `maxPayload` bytes: a `len` it does not match is the backend's to refuse.
    func send(_ packet: VsockPacket)
    /// The next packet for the guest whose payload fits in `room` bytes, nil when none waits.
    func receive(room: Int) -> VsockPacket?
    /// Whether `receive` has something (so rx buffers are worth taking).
    var hasPendingRx: Bool { get }
}
