import BrigLinux

public enum VsockError: Error, Equatable, CustomStringConvertible {
    case config(String)
    case socket(SystemError)
    public var description: String {
        switch self {
        case let .config(m): return m
        case let .socket(e): return e.description
        }
    }
}

/// Limits that keep a hostile guest (or host client) from growing the device without bound.
public struct VsockLimits: Sendable {
    /// Live connections (both directions, including ones waiting for the guest's RESPONSE).
    public var maxConnections = 256
    /// Accepted host clients that have not yet sent their `CONNECT <port>` line.
    public var maxPendingClients = 64
    /// Control packets (RESPONSE, RST, CREDIT_UPDATE, ...) waiting for rx buffers; more are dropped.
    public var maxControlPackets = 1024
    /// Our advertised buf_alloc: guest→host bytes buffered per connection while the host socket is full.
    public var bufAlloc: UInt32 = 256 << 10
    /// Host→guest bytes read ahead per connection (never more than the guest's credit).
    public var readAhead = 64 << 10
    public init() {}
}

/// A connection's ports: `local` on the host (CID 2), `peer` in the guest.
public struct VsockKey: Hashable, Sendable {
    public var local: UInt32, peer: UInt32
    public init(local: UInt32, peer: UInt32) { self.local = local; self.peer = peer }
}

/// One stream connection (Firecracker's csm): its state, the credit both ways, and the bytes
/// in flight — guest→host bytes the host has not taken (`toHost`) and host→guest bytes read
/// but not yet in an rx buffer (`toGuest`). No I/O: the muxer moves bytes between `handle`
/// (the host end) and these buffers on its own thread and reports what happened.
public struct VsockConnection<Handle: Hashable & Sendable>: Sendable {
    public enum State: Sendable { case connecting, established }
    public let key: VsockKey
    public let handle: Handle
    public internal(set) var state: State
    /// The guest's buffer space (host→guest credit).
    public internal(set) var credit = VsockCredit()
    /// Guest bytes written to the host (our fwd_cnt) and the value last told to the guest.
    public internal(set) var fwdCnt: UInt32 = 0, fwdCntSent: UInt32 = 0
    /// Bytes for the host end; the first `preface` are brig's own (`OK <port>\n`), not guest data.
    public internal(set) var toHost: [UInt8] = []
    var preface = 0
    /// Host bytes read, waiting for the guest's rx buffers.
    public internal(set) var toGuest: [UInt8] = []
    /// The host end will send nothing more; the guest has been told (SHUTDOWN) once `eofSent`.
    var hostEOF = false, eofSent = false
    /// The guest will not receive / send any more.
    var guestNoRecv = false, guestNoSend = false
    /// The host end's write side was shut (after the guest's SHUTDOWN(SEND) and a drained `toHost`).
    var hostWriteShut = false

    init(key: VsockKey, handle: Handle, state: State) { self.key = key; self.handle = handle; self.state = state }

    /// Guest bytes the host has not taken (our credit to the guest is what is left of buf_alloc).
    var pendingGuestBytes: Int { toHost.count - preface }

    /// How many bytes the muxer may read from the host end now: what the guest's credit allows
    /// beyond what is already read, within the read-ahead; 0 when nothing may be read.
    public func readBudget(_ limits: VsockLimits) -> Int {
        guard state == .established, !hostEOF, !guestNoRecv else { return 0 }
        return max(0, min(Int(credit.available) - toGuest.count, limits.readAhead - toGuest.count))
    }

    /// Whether the host end's write side should now be shut (the guest sent SHUTDOWN(SEND)).
    public var wantsHostWriteShutdown: Bool { guestNoSend && toHost.isEmpty && !hostWriteShut }

    /// Whether `nextPacket` has something for the guest.
    var hasRx: Bool {
        guard state == .established, !guestNoRecv else { return false }
        return (!toGuest.isEmpty && credit.available > 0) || (hostEOF && toGuest.isEmpty && !eofSent)
    }

    /// A control packet carrying our current credit (and recording that the guest saw it).
    mutating func credited(_ op: VsockHeader.Op, guestCID: UInt64, bufAlloc: UInt32, flags: UInt32 = 0) -> VsockHeader {
        fwdCntSent = fwdCnt
        return VsockHeader(srcCID: VirtioVsock.hostCID, dstCID: guestCID, srcPort: key.local, dstPort: key.peer, op: op,
                           flags: flags, bufAlloc: bufAlloc, fwdCnt: fwdCnt)
    }

    /// The next data (or end-of-stream) packet for the guest within `room` payload bytes.
    mutating func nextPacket(room: Int, guestCID: UInt64, bufAlloc: UInt32) -> VsockPacket? {
        guard hasRx else { return nil }
        if toGuest.isEmpty {
            eofSent = true // the host end shut its sending side: the guest gets no more data from us
            return VsockPacket(credited(.shutdown, guestCID: guestCID, bufAlloc: bufAlloc, flags: VsockHeader.shutdownSend))
        }
        let n = min(toGuest.count, Int(credit.available), room)
        guard n > 0 else { return nil }
        credit.sent &+= UInt32(n)
        var h = credited(.rw, guestCID: guestCID, bufAlloc: bufAlloc)
        h.len = UInt32(n)
        let data = Array(toGuest.prefix(n))
        toGuest.removeFirst(n)
        return VsockPacket(h, data)
    }

    /// The host end took `n` bytes of `toHost`; true when the guest should get a CREDIT_UPDATE
    /// (a quarter of our buffer forwarded since it last heard).
    mutating func hostTook(_ n: Int, bufAlloc: UInt32) -> Bool {
        let own = min(n, preface)
        preface -= own
        fwdCnt &+= UInt32(truncatingIfNeeded: n - own)
        toHost.removeFirst(n)
        return fwdCnt &- fwdCntSent >= bufAlloc / 4
    }

    /// The host end sent `bytes` (empty: end of stream).
    mutating func hostSent(_ bytes: [UInt8]) {
        if bytes.isEmpty { hostEOF = true } else { toGuest += bytes }
    }
}

/// Every connection of one device, keyed by ports, and the control packets waiting for the
/// guest: the protocol logic of Firecracker's muxer without its I/O. The guest side comes in
/// through `guestSent` and goes out through `nextRx`; the host side is reported by the I/O
/// owner (`hostConnected`, `hostTook`, `hostSent`, `hostFailed`), which also opens what
/// `connects` lists and writes out and closes what `retired` lists.
public struct VsockConnectionTable<Handle: Hashable & Sendable>: Sendable {
    public let guestCID: UInt64
    public let limits: VsockLimits
    public internal(set) var connections: [VsockKey: VsockConnection<Handle>] = [:]
    /// Control packets for the guest, in order (bounded by `limits.maxControlPackets`).
    public internal(set) var control: [VsockHeader] = []
    /// Guest-initiated connections to open on the host: the guest's REQUEST headers.
    public var connects: [VsockHeader] = []
    /// Keys whose host connect is under way (a guest RST cancels one).
    var connecting: Set<VsockKey> = []
    /// Host ends of closed connections with the bytes still owed to them (the I/O owner writes
    /// those before it closes the end).
    public var retired: [(handle: Handle, bytes: [UInt8])] = []
    var nextPort = VirtioVsock.firstEphemeralPort

    public init(guestCID: UInt64, limits: VsockLimits) { self.guestCID = guestCID; self.limits = limits }

    var liveCount: Int { connections.count + connecting.count }

    public var hasPendingRx: Bool { !control.isEmpty || connections.values.contains { $0.hasRx } }

    mutating func enqueue(_ h: VsockHeader) {
        guard control.count < limits.maxControlPackets else { return } // guest is not reading: drop
        control.append(h)
    }

    func reply(_ h: VsockHeader, _ op: VsockHeader.Op) -> VsockHeader {
        VsockHeader(srcCID: VirtioVsock.hostCID, dstCID: guestCID, srcPort: h.dstPort, dstPort: h.srcPort, op: op)
    }

    /// Removes a connection; its host end is closed (after `flushing` what the guest sent, when
    /// it closed gracefully).
    mutating func drop(_ key: VsockKey, flushing: Bool = false) {
        guard let c = connections.removeValue(forKey: key) else { return }
        retired.append((c.handle, flushing ? c.toHost : []))
    }

    /// Drops the connection and answers the guest's packet with RST.
    mutating func reset(_ key: VsockKey, answering h: VsockHeader) {
        drop(key); enqueue(reply(h, .rst))
    }

    // MARK: Guest → host

    /// A packet from the guest. Wrong addressing, type or op and payloads that do not match
    /// their `len` (or exceed our buffer space) are answered with RST; a foreign source CID
    /// is dropped; an RST is never answered.
    public mutating func guestSent(_ p: VsockPacket) {
        let h = p.header
        guard h.srcCID == guestCID, h.dstCID == VirtioVsock.hostCID, h.type == VsockHeader.typeStream,
              let op = h.knownOp else {
            if h.op != VsockHeader.Op.rst.rawValue, h.srcCID == guestCID { enqueue(reply(h, .rst)) }
            return
        }
        let key = VsockKey(local: h.dstPort, peer: h.srcPort)
        guard op != .rw || Int(h.len) == p.payload.count else { reset(key, answering: h); return }
        guard var c = connections[key] else {
            switch op {
            case .request:
                guard liveCount < limits.maxConnections, !connecting.contains(key) else { enqueue(reply(h, .rst)); return }
                connecting.insert(key); connects.append(h)
            case .rst: connecting.remove(key)
            default: enqueue(reply(h, .rst))
            }
            return
        }
        c.credit.update(from: h)
        var creditUpdate = false
        switch op {
        case .request: // duplicate connection
            reset(key, answering: h); return
        case .response:
            guard c.state == .connecting else { reset(key, answering: h); return }
            c.state = .established
            let ok = Array("OK \(key.local)\n".utf8)
            c.toHost += ok; c.preface += ok.count
        case .rst:
            drop(key); return
        case .shutdown:
            c.guestNoRecv = c.guestNoRecv || h.flags & VsockHeader.shutdownRcv != 0
            c.guestNoSend = c.guestNoSend || h.flags & VsockHeader.shutdownSend != 0
            if c.guestNoRecv && c.guestNoSend {
                // Guest closed: the host end gets what is buffered and is closed; RST confirms.
                connections[key] = c
                drop(key, flushing: true); enqueue(reply(h, .rst)); return
            }
        case .rw:
            guard c.state == .established, !c.guestNoSend else { reset(key, answering: h); return }
            c.toHost += p.payload
            // The guest must stay within the credit we advertised.
            guard c.pendingGuestBytes <= Int(limits.bufAlloc) else { reset(key, answering: h); return }
        case .creditUpdate: break
        case .creditRequest: creditUpdate = true
        }
        if creditUpdate || c.fwdCnt &- c.fwdCntSent >= limits.bufAlloc / 4 {
            enqueue(c.credited(.creditUpdate, guestCID: guestCID, bufAlloc: limits.bufAlloc))
        }
        connections[key] = c
    }

    // MARK: Host side (reported by the I/O owner)

    /// A host client asked for guest port `port`: REQUEST from a fresh ephemeral host port.
    /// False (the caller closes `handle`) when the connection limit is reached.
    public mutating func hostConnected(_ handle: Handle, toGuestPort port: UInt32) -> Bool {
        guard liveCount < limits.maxConnections, let local = freePort() else { return false }
        var c = VsockConnection(key: VsockKey(local: local, peer: port), handle: handle, state: .connecting)
        enqueue(c.credited(.request, guestCID: guestCID, bufAlloc: limits.bufAlloc))
        connections[c.key] = c
        return true
    }

    /// The outcome of opening `request` (from `connects`): RESPONSE with `handle`, RST without.
    /// A connect the guest reset meanwhile is closed again.
    public mutating func hostOpened(_ request: VsockHeader, _ handle: Handle?) {
        let key = VsockKey(local: request.dstPort, peer: request.srcPort)
        guard connecting.remove(key) != nil else {
            if let handle { retired.append((handle, [])) }
            return
        }
        guard let handle else { enqueue(reply(request, .rst)); return }
        var c = VsockConnection(key: key, handle: handle, state: .established)
        c.credit.update(from: request)
        enqueue(c.credited(.response, guestCID: guestCID, bufAlloc: limits.bufAlloc))
        connections[key] = c
    }

    /// The host end took `n` bytes of the connection's `toHost`.
    public mutating func hostTook(_ key: VsockKey, _ n: Int) {
        guard var c = connections[key] else { return }
        if c.hostTook(n, bufAlloc: limits.bufAlloc) {
            enqueue(c.credited(.creditUpdate, guestCID: guestCID, bufAlloc: limits.bufAlloc))
        }
        connections[key] = c
    }

    /// The host end sent bytes (empty: it shut its sending side).
    public mutating func hostSent(_ key: VsockKey, _ bytes: [UInt8]) {
        connections[key]?.hostSent(bytes)
    }

    /// The host end's write side was shut.
    public mutating func hostWriteShut(_ key: VsockKey) { connections[key]?.hostWriteShut = true }

    /// The host end broke: the connection is reset.
    public mutating func hostFailed(_ key: VsockKey) {
        guard var c = connections[key] else { return }
        let rst = c.credited(.rst, guestCID: guestCID, bufAlloc: limits.bufAlloc)
        drop(key); enqueue(rst)
    }

    /// An ephemeral host port no connection uses.
    mutating func freePort() -> UInt32? {
        for _ in 0..<1024 {
            let p = nextPort
            nextPort = p == UInt32.max ? VirtioVsock.firstEphemeralPort : p + 1
            if !connections.keys.contains(where: { $0.local == p }) { return p }
        }
        return nil
    }

    // MARK: Host → guest

    /// The next packet for the guest within `room` payload bytes: control packets first, then
    /// data (within each connection's credit) and end-of-stream notices.
    public mutating func nextRx(room: Int) -> VsockPacket? {
        guard room >= 0 else { return nil }
        if !control.isEmpty { return VsockPacket(control.removeFirst()) }
        for (key, var c) in connections where c.hasRx {
            guard let p = c.nextPacket(room: room, guestCID: guestCID, bufAlloc: limits.bufAlloc) else { continue }
            connections[key] = c
            return p
        }
        return nil
    }
}
