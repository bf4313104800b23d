import BrigGuestMemory
import Synchronization

/// A virtio device backend, independent of the transport.
public protocol VirtioDevice: AnyObject, Sendable {
    var deviceType: UInt32 { get }
    /// Feature bits offered (VIRTIO_F_VERSION_1 is added by the transport).
    var features: UInt64 { get }
    var queueMaxSizes: [UInt16] { get }
    func readConfig(offset: UInt64, into data: UnsafeMutableRawBufferPointer)
    /// Handles every pending chain on a queue. Returns true when used entries were added.
    func process(queue index: Int, _ queue: inout Virtqueue, memory: GuestMemory) throws(VirtqueueError) -> Bool
    /// Queues to service right after `index` was processed (e.g. vsock answers tx packets on rx).
    func followUpQueues(after index: Int) -> [Int]
    /// The driver set DRIVER_OK having accepted `features` (e.g. virtio-net tells its tap which
    /// offloads the guest takes).
    func activate(features: UInt64)
}

extension VirtioDevice {
    public func followUpQueues(after index: Int) -> [Int] { [] }
    public func activate(features: UInt64) {}
}

/// Builds the `virtio_mmio.device=<size>@<base>:<irq>` kernel parameter for one device.
public func virtioMMIOCmdlineEntry(base: UInt64, size: UInt64 = VirtioMMIO.windowSize, irq: UInt32) -> String {
    let sz = size % 1024 == 0 ? "\(size / 1024)K" : "\(size)"
    return "virtio_mmio.device=\(sz)@0x\(String(base, radix: 16)):\(irq)"
}

/// virtio-mmio transport, version 2 (virtio 1.x, section 4.2.2).
public final class VirtioMMIO: BusDevice, @unchecked Sendable {
    public static let windowSize: UInt64 = 0x1000
    public static let magic: UInt32 = 0x7472_6976 // "virt"
    public static let vendor: UInt32 = 0x6769_7262 // "brig"
    public static let featureVersion1: UInt64 = 1 << 32

    // Registers.
    public static let MagicValue: UInt64 = 0x000, Version: UInt64 = 0x004, DeviceID: UInt64 = 0x008, VendorID: UInt64 = 0x00C
    public static let DeviceFeatures: UInt64 = 0x010, DeviceFeaturesSel: UInt64 = 0x014
    public static let DriverFeatures: UInt64 = 0x020, DriverFeaturesSel: UInt64 = 0x024
    public static let QueueSel: UInt64 = 0x030, QueueNumMax: UInt64 = 0x034, QueueNum: UInt64 = 0x038
    public static let QueueReady: UInt64 = 0x044, QueueNotify: UInt64 = 0x050
    public static let InterruptStatus: UInt64 = 0x060, InterruptACK: UInt64 = 0x064, Status: UInt64 = 0x070
    public static let QueueDescLow: UInt64 = 0x080, QueueDescHigh: UInt64 = 0x084
    public static let QueueDriverLow: UInt64 = 0x090, QueueDriverHigh: UInt64 = 0x094
    public static let QueueDeviceLow: UInt64 = 0x0A0, QueueDeviceHigh: UInt64 = 0x0A4
    public static let ConfigGeneration: UInt64 = 0x0FC, Config: UInt64 = 0x100

    // Device status bits.
    public static let acknowledge: UInt32 = 1, driver: UInt32 = 2, driverOK: UInt32 = 4
    public static let featuresOK: UInt32 = 8, needsReset: UInt32 = 0x40, failed: UInt32 = 0x80
    // Interrupt status bits.
    public static let intUsedBuffer: UInt32 = 1, intConfigChange: UInt32 = 2

    public let device: any VirtioDevice
    private let memory: GuestMemory
    private let irq: (any InterruptLine)?
    public private(set) var status: UInt32 = 0
    public private(set) var driverFeatures: UInt64 = 0
    public private(set) var interruptStatus: UInt32 = 0
    public private(set) var queues: [Virtqueue]
    public private(set) var queueSel: UInt32 = 0
    /// The last queue error (a misbehaving driver); the device then sets DEVICE_NEEDS_RESET.
    public private(set) var lastError: VirtqueueError?
    private var deviceFeaturesSel: UInt32 = 0
    private var driverFeaturesSel: UInt32 = 0
    /// Serialises register accesses (vCPU threads) with device-initiated work (`notify` from
    /// a device's own event loop thread).
    private let lock = Mutex<Void>(())

    public init(device: any VirtioDevice, memory: GuestMemory, irq: (any InterruptLine)?) {
        self.device = device; self.memory = memory; self.irq = irq
        self.queues = device.queueMaxSizes.map { Virtqueue(maxSize: $0) }
    }

    public var offeredFeatures: UInt64 { device.features | Self.featureVersion1 }

    private func reset() {
        status = 0; driverFeatures = 0; interruptStatus = 0; queueSel = 0
        deviceFeaturesSel = 0; driverFeaturesSel = 0; lastError = nil
        for i in queues.indices { queues[i].reset() }
    }

    private var selected: Int? { Int(queueSel) < queues.count ? Int(queueSel) : nil }

    public func read(offset: UInt64, into data: UnsafeMutableRawBufferPointer) {
        lock.withLock { _ in readLocked(offset: offset, into: data) }
    }

    public func write(offset: UInt64, data: UnsafeRawBufferPointer) -> DeviceEffect {
        lock.withLock { _ in writeLocked(offset: offset, data: data) }
    }

    /// Handles a queue notification (from the driver, or from the device's own thread when
    /// it has something to deliver); errors put the device in DEVICE_NEEDS_RESET.
    public func notify(_ index: Int) {
        lock.withLock { _ in notifyLocked(index) }
    }

    private func readLocked(offset: UInt64, into data: UnsafeMutableRawBufferPointer) {
        for i in data.indices { data[i] = 0 }
        if offset >= Self.Config { device.readConfig(offset: offset - Self.Config, into: data); return }
        guard data.count == 4 else { return } // registers are 32-bit only
        let v: UInt32
        switch offset {
        case Self.MagicValue: v = Self.magic
        case Self.Version: v = 2
        case Self.DeviceID: v = device.deviceType
        case Self.VendorID: v = Self.vendor
        case Self.DeviceFeatures:
            v = deviceFeaturesSel == 0 ? UInt32(truncatingIfNeeded: offeredFeatures)
                : deviceFeaturesSel == 1 ? UInt32(truncatingIfNeeded: offeredFeatures >> 32) : 0
        case Self.QueueNumMax: v = selected.map { UInt32(queues[$0].maxSize) } ?? 0
        case Self.QueueReady: v = selected.map { queues[$0].ready ? 1 : 0 } ?? 0
        case Self.InterruptStatus: v = interruptStatus
        case Self.Status: v = status
        case Self.ConfigGeneration: v = 0
        default: v = 0
        }
        data.storeBytes(of: v.littleEndian, as: UInt32.self)
    }

    private func writeLocked(offset: UInt64, data: UnsafeRawBufferPointer) -> DeviceEffect {
        guard offset < Self.Config, data.count == 4 else { return .none } // config space is read-only here
        let v = UInt32(littleEndian: data.loadUnaligned(as: UInt32.self))
        func setQueue(_ body: (inout Virtqueue) -> Void) {
            // Queue layout may change only while the queue is not ready.
            if let q = selected, !queues[q].ready { body(&queues[q]) }
        }
        switch offset {
        case Self.DeviceFeaturesSel: deviceFeaturesSel = v
        case Self.DriverFeaturesSel: driverFeaturesSel = v
        case Self.DriverFeatures:
            guard status & Self.featuresOK == 0 else { break }
            if driverFeaturesSel == 0 { driverFeatures = driverFeatures & ~0xFFFF_FFFF | UInt64(v) }
            if driverFeaturesSel == 1 { driverFeatures = driverFeatures & 0xFFFF_FFFF | UInt64(v) << 32 }
        case Self.QueueSel: queueSel = v
        case Self.QueueNum: setQueue { $0.size = UInt16(truncatingIfNeeded: v) }
        case Self.QueueDescLow: setQueue { $0.descTable = $0.descTable & ~0xFFFF_FFFF | UInt64(v) }
        case Self.QueueDescHigh: setQueue { $0.descTable = $0.descTable & 0xFFFF_FFFF | UInt64(v) << 32 }
        case Self.QueueDriverLow: setQueue { $0.availRing = $0.availRing & ~0xFFFF_FFFF | UInt64(v) }
        case Self.QueueDriverHigh: setQueue { $0.availRing = $0.availRing & 0xFFFF_FFFF | UInt64(v) << 32 }
        case Self.QueueDeviceLow: setQueue { $0.usedRing = $0.usedRing & ~0xFFFF_FFFF | UInt64(v) }
        case Self.QueueDeviceHigh: setQueue { $0.usedRing = $0.usedRing & 0xFFFF_FFFF | UInt64(v) << 32 }
        case Self.QueueReady:
            guard let q = selected else { break }
            if v == 1 {
                do throws(VirtqueueError) { try queues[q].validate(memory); queues[q].ready = true } catch { fail(error) }
            } else { queues[q].ready = false }
        case Self.QueueNotify: notifyLocked(Int(v))
        case Self.InterruptACK: interruptStatus &= ~v
        case Self.Status: writeStatus(v)
        default: break
        }
        return .none
    }

    private func writeStatus(_ v: UInt32) {
        if v == 0 { reset(); return }
        var new = v
        if v & Self.featuresOK != 0, status & Self.featuresOK == 0 {
            // Accept only a subset of what was offered, and only modern (VERSION_1) drivers.
            let ok = driverFeatures & ~offeredFeatures == 0 && driverFeatures & Self.featureVersion1 != 0
            if !ok { new &= ~Self.featuresOK }
        }
        let activated = new & Self.driverOK != 0 && status & Self.driverOK == 0
        status = new | (status & Self.needsReset)
        if activated { device.activate(features: driverFeatures) }
    }

    private func notifyLocked(_ index: Int) {
        guard status & Self.driverOK != 0, status & Self.needsReset == 0 else { return }
        var used = false
        for q in [index] + device.followUpQueues(after: index) where q >= 0 && q < queues.count && queues[q].ready {
            do throws(VirtqueueError) {
                if try device.process(queue: q, &queues[q], memory: memory) { used = true }
            } catch { fail(error); return }
        }
        if used {
            interruptStatus |= Self.intUsedBuffer
            irq?.trigger()
        }
    }

    private func fail(_ e: VirtqueueError) {
        lastError = e
        status |= Self.needsReset
        interruptStatus |= Self.intConfigChange
        irq?.trigger()
    }
}
