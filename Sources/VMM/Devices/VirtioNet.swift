#if canImport(Glibc)
import Glibc
#endif
import BrigGuestMemory
import Synchronization

/// Where a virtio-net device's frames come from and go to: a tap in the VMM, memory in tests.
/// Frames are plain Ethernet frames (the device adds and strips the virtio_net_hdr), unless
/// `vnetHeader`: then each frame starts with the 12-byte virtio_net_hdr_v1 both ways (a tap
/// with IFF_VNET_HDR), which the device passes through, and it offers checksum and TSO offloads.
public protocol NetBackend: AnyObject, Sendable {
    /// Hands one frame to the host side; false when it was dropped (full, down).
    func transmit(_ frame: UnsafeRawBufferPointer) -> Bool
    /// Reads the next frame from the host side into `buffer` (truncated to its size); nil
    /// when none is ready now. Never blocks.
    func receive(into buffer: UnsafeMutableRawBufferPointer) -> Int?
    /// A descriptor that polls readable when `receive` may have a frame (-1: none, tests).
    var pollFD: Int32 { get }
    var vnetHeader: Bool { get }
    /// The offloads the guest accepted, as TUN_F_* bits (CSUM 1, TSO4 2, TSO6 4): what the
    /// host side may hand it from now on. False when the backend cannot.
    func setOffloads(_ tunFlags: UInt32) -> Bool
}

extension NetBackend {
    public var vnetHeader: Bool { false }
    public func setOffloads(_ tunFlags: UInt32) -> Bool { tunFlags == 0 }
}

/// Counters of what the device did, for tests and diagnostics.
public struct NetStats: Equatable, Sendable {
    public var txFrames = 0, txDropped = 0, rxFrames = 0, rxDropped = 0
}

/// virtio-net (device type 1): VIRTIO_NET_F_MAC, F_MTU, F_STATUS, one rx/tx queue pair, the
/// 12-byte virtio 1.x header (always VERSION_1 here), one chain per frame (no mergeable rx
/// buffers). With a `vnetHeader` backend also F_CSUM, F_GUEST_CSUM, F_HOST_TSO4/6 and
/// F_GUEST_TSO4/6: the headers go through untouched (the tap's kernel side validates the
/// guest's, as for any tap user) and frames up to 64 KiB; `activate` tells the tap what the
/// guest accepted. The guest is hostile: a tx chain with a writable buffer, shorter
/// than the header, or longer than header + MTU + 18 (Ethernet header and one VLAN tag), and
/// an rx chain with a readable buffer or too small for header + frame, are answered with a
/// used length of 0 and counted as dropped; chains that leave guest RAM or loop fail in the
/// virtqueue (DEVICE_NEEDS_RESET). Host frames are read only while the guest has rx buffers
/// (one frame is held back otherwise), so a guest that stops reading backpressures into the
/// tap's own queue, which the kernel drops from.
public final class VirtioNet: VirtioDevice, @unchecked Sendable {
    public static let featureMTU: UInt64 = 1 << 3, featureMAC: UInt64 = 1 << 5, featureStatus: UInt64 = 1 << 16
    public static let featureCsum: UInt64 = 1 << 0, featureGuestCsum: UInt64 = 1 << 1
    public static let featureGuestTSO4: UInt64 = 1 << 7, featureGuestTSO6: UInt64 = 1 << 8
    public static let featureHostTSO4: UInt64 = 1 << 11, featureHostTSO6: UInt64 = 1 << 12
    public static let offloadFeatures = featureCsum | featureGuestCsum | featureGuestTSO4 | featureGuestTSO6 | featureHostTSO4 | featureHostTSO6
    /// Largest frame with TSO (a 64 KiB IP packet, Ethernet header, one VLAN tag).
    public static let maxOffloadFrame = 65535 + 18
    public static let headerSize = 12
    public static let rxQueue = 0, txQueue = 1
    public static let linkUp: UInt16 = 1
    /// Largest frame read from the backend (a tap without GSO delivers at most its MTU + 14;
    /// with a vnet header and TSO, the header and up to 64 KiB).
    public static let maxHostFrame = headerSize + maxOffloadFrame

    public let deviceType: UInt32 = 1
    public let queueMaxSizes: [UInt16] = [256, 256]
    public let features: UInt64
    public let mac: [UInt8]
    public let mtu: UInt16
    public let backend: any NetBackend

    private struct State {
        var stats = NetStats()
        /// Length of a host frame in `rxFrame` still waiting for an rx buffer.
        var heldFrame: Int?
        /// The guest has no rx buffers: do not read the backend until it adds some.
        var rxStalled = true
        /// Incremented on every rx processing round (the event loop sees whether one ran).
        var rxRounds = 0
        var stopped = false
        /// The backend reported an error or hang-up: it is not polled again.
        var backendGone = false
    }
    private let state = Mutex(State())
    private let rxFrame: UnsafeMutableRawBufferPointer
    private let txFrame: UnsafeMutableRawBufferPointer
    private let wakeRead: Int32, wakeWrite: Int32
    /// Frames to and from the backend carry the virtio_net_hdr.
    private let passHeader: Bool

    public enum ConfigError: Error, Equatable, CustomStringConvertible {
        case mac(count: Int), mtu(UInt16), wakePipe(errno: Int32)
        public var description: String {
            switch self {
            case let .mac(n): return "virtio-net MAC address has \(n) bytes, not 6"
            case let .mtu(m): return "virtio-net MTU \(m) is outside 68...65535"
            case let .wakePipe(e): return "virtio-net wake pipe: \(String(cString: strerror(e)))"
            }
        }
    }

    public init(mac: [UInt8], mtu: UInt16 = 1500, backend: any NetBackend) throws(ConfigError) {
        guard mac.count == 6 else { throw .mac(count: mac.count) }
        guard mtu >= 68 else { throw .mtu(mtu) }
        var p: [Int32] = [0, 0]
        guard pipe(&p) == 0 else { throw .wakePipe(errno: errno) }
        for f in p { setNonBlockingCloexec(f) }
        self.mac = mac; self.mtu = mtu; self.backend = backend
        passHeader = backend.vnetHeader
        features = Self.featureMAC | Self.featureMTU | Self.featureStatus | (passHeader ? Self.offloadFeatures : 0)
        wakeRead = p[0]; wakeWrite = p[1]
        rxFrame = .allocate(byteCount: Self.maxHostFrame, alignment: 16)
        txFrame = .allocate(byteCount: passHeader ? Self.headerSize + Self.maxOffloadFrame : Int(mtu) + 18, alignment: 16)
    }

    deinit { close(wakeRead); close(wakeWrite); rxFrame.deallocate(); txFrame.deallocate() }

    public var stats: NetStats { state.withLock { $0.stats } }
    /// Longest frame (without the virtio header) the guest may send.
    public var maxTxFrame: Int { passHeader ? txFrame.count - Self.headerSize : txFrame.count }

    /// The guest's offloads go to the tap: checksums it leaves partial, TSO segments it takes
    /// whole (TSO needs checksum offload, as the tap requires).
    public func activate(features: UInt64) {
        guard passHeader else { return }
        let csum = features & Self.featureGuestCsum != 0
        let flags: UInt32 = csum ? 1 | (features & Self.featureGuestTSO4 != 0 ? 2 : 0) | (features & Self.featureGuestTSO6 != 0 ? 4 : 0) : 0
        _ = backend.setOffloads(flags)
    }

    /// Config space: mac[6], status u16, max_virtqueue_pairs u16, mtu u16 (little-endian).
    public func readConfig(offset: UInt64, into data: UnsafeMutableRawBufferPointer) {
        var cfg = mac
        withUnsafeBytes(of: Self.linkUp.littleEndian) { cfg += $0 }
        withUnsafeBytes(of: UInt16(1).littleEndian) { cfg += $0 }
        withUnsafeBytes(of: mtu.littleEndian) { cfg += $0 }
        for i in data.indices {
            let (o, overflow) = offset.addingReportingOverflow(UInt64(i))
            data[i] = !overflow && o < UInt64(cfg.count) ? cfg[Int(o)] : 0
        }
    }

    public func process(queue index: Int, _ queue: inout Virtqueue, memory: GuestMemory) throws(VirtqueueError) -> Bool {
        switch index {
        case Self.rxQueue: return try receive(&queue, memory)
        case Self.txQueue: return try transmit(&queue, memory)
        default: return false
        }
    }

    // MARK: tx (guest → host)

    private func transmit(_ queue: inout Virtqueue, _ mem: GuestMemory) throws(VirtqueueError) -> Bool {
        try queue.drain(mem) { chain in
            let sent = gather(chain, mem).map { n in backend.transmit(UnsafeRawBufferPointer(rebasing: txFrame[..<n])) } ?? false
            state.withLock { if sent { $0.stats.txFrames += 1 } else { $0.stats.txDropped += 1 } }
            return 0
        }
    }

    /// Copies a tx chain's frame (after the header) into `txFrame`; nil for a malformed chain.
    func gather(_ chain: DescriptorChain, _ mem: GuestMemory) -> Int? {
        guard chain.buffers.allSatisfy({ !$0.writable }) else { return nil }
        let total = chain.buffers.reduce(UInt64(0)) { $0 + UInt64($1.length) }
        guard total > UInt64(Self.headerSize), total - UInt64(Self.headerSize) <= UInt64(maxTxFrame) else { return nil }
        var skip = passHeader ? 0 : Self.headerSize, out = 0
        for b in chain.buffers {
            var len = Int(b.length), addr = b.address
            let s = min(skip, len)
            skip -= s; len -= s; addr += UInt64(s)
            guard len > 0 else { continue }
            guard let src = try? mem.slice(addr, length: UInt64(len)) else { return nil }
            UnsafeMutableRawBufferPointer(rebasing: txFrame[out..<(out + len)]).copyMemory(from: UnsafeRawBufferPointer(src))
            out += len
        }
        return out
    }

    // MARK: rx (host → guest)

    private func receive(_ queue: inout Virtqueue, _ mem: GuestMemory) throws(VirtqueueError) -> Bool {
        var used = false
        let wasStalled = state.withLock { s -> Bool in s.rxRounds &+= 1; let w = s.rxStalled; s.rxStalled = false; return w }
        defer {
            // The event loop waits for the backend only while the guest has buffers.
            let resumed = state.withLock { wasStalled && !$0.rxStalled }
            if resumed { wake() }
        }
        while true {
            var held = state.withLock { $0.heldFrame }
            if held == nil {
                guard try queue.pending(mem) > 0 else { state.withLock { $0.rxStalled = true }; break }
                guard let n = backend.receive(into: rxFrame) else { break }
                held = min(n, rxFrame.count)
            }
            guard let n = held else { break }
            guard let chain = try queue.pop(mem) else {
                state.withLock { $0.heldFrame = n; $0.rxStalled = true }
                break
            }
            let written = scatter(n, chain, mem)
            state.withLock {
                $0.heldFrame = nil
                if written > 0 { $0.stats.rxFrames += 1 } else { $0.stats.rxDropped += 1 }
            }
            try queue.pushUsed(mem, head: chain.head, length: UInt32(written))
            used = true
        }
        return used
    }

    /// Writes the header (num_buffers = 1) and `rxFrame[..<n]` into an rx chain (with a vnet
    /// header backend, `rxFrame` starts with the host's header); returns the bytes written, 0
    /// when the chain is malformed or too small (the frame is dropped).
    func scatter(_ n: Int, _ chain: DescriptorChain, _ mem: GuestMemory) -> Int {
        guard chain.buffers.allSatisfy(\.writable) else { return 0 }
        let room = chain.buffers.reduce(UInt64(0)) { $0 + UInt64($1.length) }
        var header = [UInt8](repeating: 0, count: Self.headerSize)
        if passHeader {
            guard n > Self.headerSize, room >= UInt64(n) else { return 0 }
            for i in 0..<10 { header[i] = rxFrame[i] }
        } else {
            guard room >= UInt64(Self.headerSize + n) else { return 0 }
        }
        header[10] = 1 // num_buffers (le16)
        let skip = passHeader ? Self.headerSize : 0
        let total = Self.headerSize + n - skip
        var done = 0
        for b in chain.buffers where done < total {
            let len = min(Int(b.length), total - done)
            guard let dst = try? mem.slice(b.address, length: UInt64(len)) else { return 0 }
            var at = 0
            while at < len {
                let o = done + at
                if o < Self.headerSize {
                    dst[at] = header[o]; at += 1
                } else {
                    let k = len - at
                    UnsafeMutableRawBufferPointer(rebasing: dst[at..<len])
                        .copyMemory(from: UnsafeRawBufferPointer(rebasing: rxFrame[(o - Self.headerSize + skip)..<(o - Self.headerSize + skip + k)]))
                    at = len
                }
            }
            done += len
        }
        return done
    }

    // MARK: event loop

    func wake() { var one: UInt8 = 1; _ = write(wakeWrite, &one, 1) }

    /// Ends `serve`. Idempotent.
    public func stop() {
        state.withLock { $0.stopped = true }
        wake()
    }

    /// Waits for the backend (while the guest has rx buffers) or a wake-up, and calls
    /// `deliver` (the transport's notify of the rx queue) when a frame may be ready. Returns
    /// false once stopped.
    public func pollBackend(timeoutMs: Int32, deliver: () -> Void) -> Bool {
        let (stalled, stopped, rounds, gone) = state.withLock { ($0.rxStalled, $0.stopped, $0.rxRounds, $0.backendGone) }
        if stopped { return false }
        var fds = [pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
        if !stalled, !gone, backend.pollFD >= 0 { fds.append(pollfd(fd: backend.pollFD, events: Int16(POLLIN), revents: 0)) }
        let n = poll(&fds, nfds_t(fds.count), timeoutMs)
        if n > 0, fds[0].revents != 0 { var v = [UInt8](repeating: 0, count: 64); while read(wakeRead, &v, 64) > 0 {} }
        if n > 0, fds.count > 1, fds[1].revents & Int16(POLLERR | POLLHUP | POLLNVAL) != 0 {
            state.withLock { $0.backendGone = true }
        } else if n > 0, fds.count > 1, fds[1].revents != 0 {
            deliver()
            // The transport did not run rx (driver not ready, or needs reset): wait for the
            // guest instead of spinning on a readable backend.
            state.withLock { if $0.rxRounds == rounds { $0.rxStalled = true } }
        }
        return !state.withLock { $0.stopped }
    }

    /// Runs `pollBackend` until `stop`.
    public func serve(deliver: () -> Void) {
        while pollBackend(timeoutMs: -1, deliver: deliver) {}
    }
}

/// A tap file descriptor (opened by the VMM with IFF_TAP | IFF_NO_PI, and IFF_VNET_HDR unless
/// offloads are off): with IFF_VNET_HDR its header size is set to the virtio 1.x 12 bytes and
/// the device passes headers through. Owns the fd.
public final class TapBackend: NetBackend, @unchecked Sendable {
    public let fd: Int32
    public let vnetHeader: Bool
    static let tunGetIff: UInt = 0x8004_54D2, tunSetVnetHdrSz: UInt = 0x4004_54D8, tunSetOffload: UInt = 0x4004_54D0
    static let iffVnetHdr: UInt16 = 0x4000

    public init(fd: Int32) {
        self.fd = fd
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        var ifr = [UInt8](repeating: 0, count: 40), size: Int32 = Int32(VirtioNet.headerSize)
        let flags = ifr.withUnsafeMutableBytes { ioctl(fd, Self.tunGetIff, $0.baseAddress!) } == 0 ? UInt16(ifr[16]) | UInt16(ifr[17]) << 8 : 0
        vnetHeader = flags & Self.iffVnetHdr != 0 && ioctl(fd, Self.tunSetVnetHdrSz, &size) == 0
    }
    deinit { close(fd) }
    public var pollFD: Int32 { fd }
    public func setOffloads(_ tunFlags: UInt32) -> Bool { ioctl(fd, Self.tunSetOffload, CInt(bitPattern: tunFlags)) == 0 }
    public func transmit(_ frame: UnsafeRawBufferPointer) -> Bool {
        while true {
            let n = write(fd, frame.baseAddress, frame.count)
            if n < 0, errno == EINTR { continue }
            return n == frame.count
        }
    }
    public func receive(into buffer: UnsafeMutableRawBufferPointer) -> Int? {
        while true {
            let n = read(fd, buffer.baseAddress, buffer.count)
            if n < 0, errno == EINTR { continue }
            return n > 0 ? n : nil
        }
    }
}

/// Frames in memory (tests, and a loopback for the VMM's own checks); with `vnetHeader`, frames
/// carry the virtio_net_hdr as a tap's do, and the offloads set are recorded.
public final class MemoryNetBackend: NetBackend, @unchecked Sendable {
    private let q = Mutex((inbound: [[UInt8]](), sent: [[UInt8]](), offloads: [UInt32]()))
    public let vnetHeader: Bool
    public init(vnetHeader: Bool = false) { self.vnetHeader = vnetHeader }
    public var pollFD: Int32 { -1 }
    public var offloads: [UInt32] { q.withLock { $0.offloads } }
    public func setOffloads(_ tunFlags: UInt32) -> Bool { q.withLock { $0.offloads.append(tunFlags) }; return vnetHeader }
    public func inject(_ frame: [UInt8]) { q.withLock { $0.inbound.append(frame) } }
    public var sent: [[UInt8]] { q.withLock { $0.sent } }
    public var waiting: Int { q.withLock { $0.inbound.count } }
    public func transmit(_ frame: UnsafeRawBufferPointer) -> Bool { q.withLock { $0.sent.append(Array(frame)) }; return true }
    public func receive(into buffer: UnsafeMutableRawBufferPointer) -> Int? {
        q.withLock { s -> Int? in
            guard !s.inbound.isEmpty else { return nil }
            let f = s.inbound.removeFirst()
            let n = min(f.count, buffer.count)
            for i in 0..<n { buffer[i] = f[i] }
            return n
        }
    }
}
