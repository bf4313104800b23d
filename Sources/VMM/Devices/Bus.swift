import Synchronization

/// Raises a guest interrupt. Implemented by the VMM over KVM; devices never see KVM.
public protocol InterruptLine: Sendable {
    func trigger()
}

/// What a device access asks the VMM to do besides completing the access.
public enum DeviceEffect: Equatable, Sendable {
    case none
    /// Guest requested a reset (i8042 0xFE, triple fault handled elsewhere).
    case reset
    /// Guest powered off with this exit status (brig's exit port).
    case powerOff(status: UInt8)
}

/// A device on a PIO or MMIO bus. `offset` is relative to the device's base.
public protocol BusDevice: AnyObject, Sendable {
    func read(offset: UInt64, into data: UnsafeMutableRawBufferPointer)
    func write(offset: UInt64, data: UnsafeRawBufferPointer) -> DeviceEffect
}

public enum BusError: Error, Equatable, CustomStringConvertible {
    case overlap(base: UInt64, size: UInt64, existingBase: UInt64)
    case emptyRange(base: UInt64)
    public var description: String {
        switch self {
        case let .overlap(b, s, e):
            return "bus range 0x\(String(b, radix: 16))+0x\(String(s, radix: 16)) overlaps the device at 0x\(String(e, radix: 16))"
        case let .emptyRange(b): return "bus range at 0x\(String(b, radix: 16)) has size 0"
        }
    }
}

/// Address-ordered ranges to devices. Accesses to a device are serialised by the bus lock.
public final class Bus: Sendable {
    struct Entry { let base: UInt64; let size: UInt64; let device: any BusDevice }
    private let entries = Mutex<[Entry]>([])
    public init() {}

    public func insert(_ device: any BusDevice, base: UInt64, size: UInt64) throws(BusError) {
        guard size > 0 else { throw .emptyRange(base: base) }
        let result: BusError? = entries.withLock { list in
            for e in list where base < e.base &+ e.size && e.base < base &+ size {
                return .overlap(base: base, size: size, existingBase: e.base)
            }
            list.append(Entry(base: base, size: size, device: device))
            list.sort { $0.base < $1.base }
            return nil
        }
        if let result { throw result }
    }

    /// The device and offset for `address`, if any device claims it.
    public func resolve(_ address: UInt64) -> (device: any BusDevice, offset: UInt64)? {
        entries.withLock { list in
            for e in list where address >= e.base && address - e.base < e.size { return (e.device, address - e.base) }
            return nil
        }
    }

    /// Reads: unclaimed addresses read as all ones, like an empty ISA bus.
    public func read(_ address: UInt64, into data: UnsafeMutableRawBufferPointer) {
        guard let (d, off) = resolve(address) else {
            for i in data.indices { data[i] = 0xFF }
            return
        }
        entries.withLock { _ in d.read(offset: off, into: data) }
    }

    /// Writes: unclaimed addresses are ignored.
    public func write(_ address: UInt64, data: UnsafeRawBufferPointer) -> DeviceEffect {
        guard let (d, off) = resolve(address) else { return .none }
        return entries.withLock { _ in d.write(offset: off, data: data) }
    }
}

/// brig's power-off convention: a 1-byte write of N to I/O port 0xF4 ends the VM with exit
/// status N (same port as QEMU's isa-debug-exit default, so one test guest runs on both).
public final class ExitPort: BusDevice {
    public static let port: UInt64 = 0xF4
    public init() {}
    public func read(offset: UInt64, into data: UnsafeMutableRawBufferPointer) {
        for i in data.indices { data[i] = 0 }
    }
    public func write(offset: UInt64, data: UnsafeRawBufferPointer) -> DeviceEffect {
        guard offset == 0, let v = data.first else { return .none }
        return .powerOff(status: v)
    }
}

/// Enough of the i8042 keyboard controller for Linux: the 0xFE reset command (`reboot=k`), and a
/// status that tells the driver there is no controller to probe. The status always reads "output
/// buffer full, input buffer empty": Linux's probe drains the output buffer, finds it never
/// empties and reports "i8042: No controller found" after 16 reads (as on a machine without one),
/// while its reset path, which waits only for the input buffer to empty, writes 0xFE at once.
/// (A status of 0 made the driver think a controller was there and poll for its answer to "read
/// CTR" for seconds: 6 s of a nested boot.)
public final class I8042: BusDevice {
    /// Registers at 0x60 (data) and 0x64 (command/status); map as one 5-byte range at 0x60.
    public static let base: UInt64 = 0x60
    public static let size: UInt64 = 5
    /// Status: OBF (bit 0) set, IBF (bit 1) clear.
    public static let status: UInt8 = 0x01
    public init() {}
    public func read(offset: UInt64, into data: UnsafeMutableRawBufferPointer) {
        // 0x64: the status above. 0x60: no data (0). 0x61: 0.
        for i in data.indices { data[i] = 0 }
        if offset == 4, !data.isEmpty { data[0] = Self.status }
    }
    public func write(offset: UInt64, data: UnsafeRawBufferPointer) -> DeviceEffect {
        if offset == 4, data.first == 0xFE { return .reset }
        return .none
    }
}
