import BrigGuestMemory

/// virtio-vsock (device type 19), the virtio side only: config space (the guest CID), tx
/// chains parsed into packets for the backend, rx chains filled from it. Connections, credit
/// and host sockets are the backend's (`VsockMuxer` in the VMM, an in-memory one in tests).
///
/// Queues: 0 rx (device→guest), 1 tx (guest→device), 2 event (unused). Every tx chain is read
/// within guest RAM (the virtqueue validated it); a header shorter than 44 bytes is dropped,
/// and at most `maxPayload` payload bytes are gathered, so a `len` the chain does not back —
/// or a huge one — reaches the backend as a packet whose payload does not match its `len`.
public final class VirtioVsock: VirtioDevice, @unchecked Sendable {
    public static let hostCID: UInt64 = 2
    public static let rxQueue = 0, txQueue = 1, eventQueue = 2
    /// Host ports brig gives host-initiated connections start here.
    public static let firstEphemeralPort: UInt32 = 1 << 30

    public let deviceType: UInt32 = 19
    public let queueMaxSizes: [UInt16] = [256, 256, 256]
    public let features: UInt64 = 0
    public let guestCID: UInt64
    public let backend: any VsockBackend
    /// The largest payload gathered from a tx chain (the backend's advertised buffer space).
    public let maxPayload: Int

    public init(guestCID: UInt64, backend: any VsockBackend, maxPayload: Int = Int(VsockLimits().bufAlloc)) throws(VsockError) {
        try Self.check(guestCID: guestCID)
        self.guestCID = guestCID; self.backend = backend; self.maxPayload = maxPayload
    }

    public static func check(guestCID: UInt64) throws(VsockError) {
        guard guestCID >= 3, guestCID <= UInt64(UInt32.max) - 1 else { throw .config("vsock guest CID \(guestCID) must be 3...2^32-2") }
    }

    public func readConfig(offset: UInt64, into data: UnsafeMutableRawBufferPointer) {
        for i in data.indices {
            let o = Int(offset) + i
            data[i] = o < 8 ? UInt8(truncatingIfNeeded: guestCID >> (8 * o)) : 0
        }
    }

    /// Replies to tx packets (RST, RESPONSE, credit) wait in the backend: rx right after tx.
    public func followUpQueues(after index: Int) -> [Int] { index == Self.txQueue ? [Self.rxQueue] : [] }

    public func process(queue index: Int, _ queue: inout Virtqueue, memory: GuestMemory) throws(VirtqueueError) -> Bool {
        switch index {
        case Self.txQueue:
            return try queue.drain(memory) { chain in
                if let packet = readPacket(chain, memory) { backend.send(packet) } // short header: dropped
                return 0
            }
        case Self.rxQueue: return try fillRx(&queue, memory)
        default: return false // event queue: we never raise transport events
        }
    }

    /// Gathers the readable part of a chain: the header plus at most `len` (and at most
    /// `maxPayload`) payload bytes.
    func readPacket(_ chain: DescriptorChain, _ mem: GuestMemory) -> VsockPacket? {
        var bytes: [UInt8] = []
        var want = VsockHeader.size
        var hdr: VsockHeader?
        for b in chain.readable {
            var off: UInt64 = 0
            while off < UInt64(b.length), bytes.count < want {
                let n = min(UInt64(b.length) - off, UInt64(want - bytes.count))
                guard let chunk = try? mem.read(b.address + off, count: Int(n)) else { return nil }
                bytes += chunk; off += n
                if hdr == nil, bytes.count == VsockHeader.size {
                    hdr = VsockHeader(bytes)
                    // A payload beyond the backend's buffer space can never be legitimate.
                    guard let h = hdr, h.len <= maxPayload else { return hdr.map { VsockPacket($0) } }
                    want += Int(h.len)
                }
            }
        }
        guard let h = hdr else { return nil }
        return VsockPacket(h, Array(bytes.dropFirst(VsockHeader.size)))
    }

    /// Writes waiting packets into rx chains; a chain too small for a header comes back empty.
    private func fillRx(_ queue: inout Virtqueue, _ mem: GuestMemory) throws(VirtqueueError) -> Bool {
        var used = false
        while backend.hasPendingRx, let chain = try queue.pop(mem) {
            let space = chain.writable.reduce(0) { $0 + Int($1.length) }
            let packet = space >= VsockHeader.size ? backend.receive(room: space - VsockHeader.size) : nil
            if space >= VsockHeader.size, packet == nil { queue.undoPop(); break } // nothing after all
            var written = 0
            if let p = packet { written = scatter(p.header.bytes + p.payload, chain.writable, mem) }
            try queue.pushUsed(mem, head: chain.head, length: UInt32(written))
            used = true
        }
        return used
    }

    private func scatter(_ bytes: [UInt8], _ bufs: [DescriptorBuffer], _ mem: GuestMemory) -> Int {
        var off = 0
        for b in bufs where off < bytes.count {
            let n = min(Int(b.length), bytes.count - off)
            guard (try? mem.write(bytes[off..<off + n], at: b.address)) != nil else { return off }
            off += n
        }
        return off
    }
}
