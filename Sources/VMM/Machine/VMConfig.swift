import BrigBoot
import BrigDevices
import BrigKVM

/// Everything needed to build a VM.
public struct VMConfig: Sendable {
    public struct Disk: Sendable { public var path: String; public var readOnly: Bool
        public init(path: String, readOnly: Bool) { self.path = path; self.readOnly = readOnly } }
    public var kernelPath: String
    public var initrdPath: String?
    public var disks: [Disk] = []
    public var memoryBytes: UInt64 = 256 << 20
    public var cpus: Int = 1
    public var cmdline: String = VMConfig.defaultCmdline
    /// Serial output goes here (default stdout).
    public var serialFD: Int32 = 1
    public var cpuid = CPUIDPolicy()
    /// Enter ELF kernels through their PVH note when they have one.
    public var preferPVH = true
    public var timeoutSeconds: Double?
    /// Create the in-kernel i8254 PIT (Linux then may use it as its boot clock event device).
    public var pit = true
    /// A virtio-vsock device with a Firecracker-style hybrid Unix socket host side.
    public var vsock: VsockConfig?
    /// A virtio-net device on a tap (the slot after the vsock device).
    public var net: NetConfig?
    /// Host paths served by one virtio-fs device (tag `fsTag`), the slot after virtio-net.
    public struct Share: Sendable { public var path: String; public var readOnly: Bool; public var recursive: Bool
        public init(path: String, readOnly: Bool, recursive: Bool = true) { self.path = path; self.readOnly = readOnly; self.recursive = recursive } }
    public var fs: [Share] = []
    public var fsTag = "brig"
    /// A virtio-rng (entropy) device, the slot after virtio-fs: the guest seeds its random pool
    /// from the host.
    public var rng = true
    /// A virtio-balloon device for free page reporting only, the last slot: memory the guest
    /// frees goes back to the host (VirtioBalloon).
    public var freePageReporting = true
    public static let defaultCmdline = "console=ttyS0 reboot=k panic=-1 pci=off"
    public init(kernelPath: String) { self.kernelPath = kernelPath }
}

/// virtio-vsock: the guest gets `guestCID`; the VMM listens on `udsPath` (mode 0600) for
/// host clients that write `CONNECT <port>\n` and read `OK <hostport>\n`, and forwards
/// guest connections to host port P to `<udsPath>_<P>`. The socket is removed when the VM stops.
public struct VsockConfig: Sendable {
    public var guestCID: UInt64
    public var udsPath: String
    public init(guestCID: UInt64 = 3, udsPath: String) { self.guestCID = guestCID; self.udsPath = udsPath }
}

/// brig's fixed device map (also in docs/vmm.md). virtio-mmio slots: disks first (slot i for
/// disk i), then the vsock device at slot `disks.count`, then virtio-net, virtio-fs,
/// virtio-rng and virtio-balloon, each in the next slot (only the devices configured take one).
public enum DeviceMap {
    public static let serialPort: UInt64 = Serial16550.com1, serialIRQ: UInt32 = Serial16550.com1IRQ
    public static let virtioBase: UInt64 = 0xD000_0000
    public static let virtioFirstIRQ: UInt32 = 5
    public static func virtio(_ i: Int) -> (base: UInt64, irq: UInt32) {
        (virtioBase + UInt64(i) * VirtioMMIO.windowSize, virtioFirstIRQ + UInt32(i))
    }
}
