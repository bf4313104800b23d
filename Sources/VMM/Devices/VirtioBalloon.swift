import BrigGuestMemory

/// virtio-balloon (device type 5, virtio 1.x section 5.5) for one thing only: free page
/// reporting (VIRTIO_BALLOON_F_REPORTING). The guest's page allocator reports blocks it has
/// free (Linux: 2 MiB and larger, a few seconds after they were freed, CONFIG_PAGE_REPORTING)
/// and the device gives their host memory back (`GuestMemory.discard`), so a VM's RSS follows
/// what its guest uses instead of the most it ever touched — the initramfs the guest unpacked
/// and freed, page cache it dropped, a container's memory after it exited.
///
/// The balloon itself is never inflated: `num_pages` reads 0 and the config space is read-only,
/// so the driver's `actual` writes are ignored. Chains on the inflate and deflate queues (a guest
/// may post them unasked) are returned without effect. Queues, as Linux numbers them when only
/// this feature is negotiated (absent optional queues take no index): 0 inflate, 1 deflate,
/// 2 reporting.
public final class VirtioBalloon: VirtioDevice, @unchecked Sendable {
    public static let inflateQueue = 0, deflateQueue = 1, reportingQueue = 2
    /// VIRTIO_BALLOON_F_REPORTING.
    public static let featureReporting: UInt64 = 1 << 5

    public let deviceType: UInt32 = 5
    /// The reporting queue must hold a whole report (Linux: 32 entries, one chain).
    public let queueMaxSizes: [UInt16] = [64, 64, 64]
    public var features: UInt64 { Self.featureReporting }
    /// Bytes given back to the host so far (tests, diagnostics).
    public private(set) var discardedBytes: UInt64 = 0

    public init() {}

    /// num_pages, actual, free_page_hint_cmd_id, poison_val: all zero.
    public func readConfig(offset: UInt64, into data: UnsafeMutableRawBufferPointer) {
        for i in data.indices { data[i] = 0 }
    }

    public func process(queue index: Int, _ queue: inout Virtqueue, memory: GuestMemory) throws(VirtqueueError) -> Bool {
        switch index {
        case Self.reportingQueue: return try queue.drain(memory) { report($0, memory) }
        case Self.inflateQueue, Self.deflateQueue: return try queue.drain(memory) { _ in 0 }
        default: return false
        }
    }

    /// Each device-writable buffer of a report chain is a free block: its whole pages go back to
    /// the host. A buffer the queue would not accept as RAM is skipped (the queue checked each
    /// lies in RAM; one across two regions is refused by `discard`). Nothing is written.
    func report(_ chain: DescriptorChain, _ mem: GuestMemory) -> UInt32 {
        for b in chain.buffers where b.writable && b.length > 0 {
            if let n = try? mem.discard(b.address, length: UInt64(b.length)) { discardedBytes += n }
        }
        return 0
    }
}
