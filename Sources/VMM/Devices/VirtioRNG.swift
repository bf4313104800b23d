#if canImport(Glibc)
import Glibc
#endif
import BrigGuestMemory
import CBrigShim

/// virtio-rng, the entropy device (device type 4, virtio 1.x section 5.4): one request queue, no
/// features, no config space. Each chain the driver makes available is returned with its
/// device-writable buffers filled from the host's getrandom(2), at most `maxBytesPerRequest` bytes
/// per chain (a guest cannot make one notification cost the VMM more than that); device-readable
/// buffers are left alone. The guest seeds its random pool from it at boot (Linux's hw_random
/// core, CONFIG_HW_RANDOM_VIRTIO), instead of waiting seconds for crng init.
public final class VirtioRNG: VirtioDevice, @unchecked Sendable {
    public static let requestQueue = 0
    public static let defaultMaxBytesPerRequest = 64 * 1024

    public let deviceType: UInt32 = 4
    public let queueMaxSizes: [UInt16] = [256]
    public var features: UInt64 { 0 }
    public let maxBytesPerRequest: Int
    /// Fills the buffer with random bytes; returns how many it filled (0 on failure).
    private let source: @Sendable (UnsafeMutableRawBufferPointer) -> Int

    /// `source` replaces getrandom(2) (tests: a failing or short source).
    public init(maxBytesPerRequest: Int = VirtioRNG.defaultMaxBytesPerRequest,
                source: @escaping @Sendable (UnsafeMutableRawBufferPointer) -> Int = { VirtioRNG.hostRandom($0) }) {
        self.maxBytesPerRequest = max(0, maxBytesPerRequest)
        self.source = source
    }

    /// getrandom(2) from the host's urandom pool until `buffer` is full; stops early (returning
    /// the bytes filled so far) if the call fails for any reason other than EINTR.
    public static func hostRandom(_ buffer: UnsafeMutableRawBufferPointer) -> Int {
        guard let base = buffer.baseAddress else { return 0 }
        var done = 0
        while done < buffer.count {
            let n = brig_getrandom(base + done, UInt(buffer.count - done))
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { break }
            done += n
        }
        return done
    }

    /// No config space: reads as zeros.
    public func readConfig(offset: UInt64, into data: UnsafeMutableRawBufferPointer) {
        for i in data.indices { data[i] = 0 }
    }

    public func process(queue index: Int, _ queue: inout Virtqueue, memory: GuestMemory) throws(VirtqueueError) -> Bool {
        guard index == Self.requestQueue else { return false }
        return try queue.drain(memory) { fill($0, memory) }
    }

    /// Fills the chain's writable buffers in order, up to the per-request bound; returns the
    /// bytes written (what the used ring reports: only bytes that really are random).
    func fill(_ chain: DescriptorChain, _ mem: GuestMemory) -> UInt32 {
        var budget = maxBytesPerRequest
        var written = 0
        for b in chain.buffers where b.writable && b.length > 0 {
            guard budget > 0 else { break }
            let len = min(Int(b.length), budget)
            // The queue checked the buffer lies in RAM; a buffer across two regions is refused here.
            guard let dst = try? mem.slice(b.address, length: UInt64(len)) else { break }
            let n = min(max(source(dst), 0), len)
            written += n
            budget -= n
            guard n == len else { break }
        }
        return UInt32(written)
    }
}
