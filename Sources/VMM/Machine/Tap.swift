#if canImport(Glibc)
import Glibc
#endif
import BrigLinux
import CBrigShim

/// A virtio-net device on a tap: the tap is created (or attached, if it exists) in the network
/// namespace at `netnsPath` (nil: the VMM's own), before the VMM confines itself into a new
/// one; the open fd keeps working across that. The tap is not persistent: it disappears when
/// the VMM exits. `mac`/`mtu` are what the guest's interface gets.
public struct NetConfig: Sendable, Equatable {
    public var tapName: String
    public var netnsPath: String?
    public var mac: [UInt8]
    public var mtu: UInt16
    public init(tapName: String, netnsPath: String? = nil, mac: [UInt8], mtu: UInt16 = 1500) {
        self.tapName = tapName; self.netnsPath = netnsPath; self.mac = mac; self.mtu = mtu
    }

    /// Parses `aa:bb:cc:dd:ee:ff`.
    public static func parseMAC(_ s: String) -> [UInt8]? {
        let parts = s.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 6 else { return nil }
        let bytes = parts.compactMap { $0.count == 2 ? UInt8($0, radix: 16) : nil }
        return bytes.count == 6 ? bytes : nil
    }
}

public enum Tap {
    static let tunSetIff: UInt = 0x4004_54CA // _IOW('T', 202, int)
    static let iffTap: UInt16 = 0x0002, iffNoPI: UInt16 = 0x1000, iffVnetHdr: UInt16 = 0x4000
    /// `BRIG_VM_NET_OFFLOAD=1` opens the tap with IFF_VNET_HDR: checksum/TSO offloads. Off by
    /// default: measured not to help under nested emulation (benchmarks/net.sh measures both;
    /// docs/microvm.md, "Network").
    public static let offloadVariable = "BRIG_VM_NET_OFFLOAD"
    public static var offloads: Bool { getenv(offloadVariable).map { String(cString: $0) == "1" } ?? false }
    static let nameMax = 15 // IFNAMSIZ - 1

    /// Opens /dev/net/tun as tap `name` (IFF_TAP | IFF_NO_PI, IFF_VNET_HDR unless offloads are
    /// off) inside `netnsPath`.
    public static func open(name: String, netnsPath: String?, vnetHeader: Bool = offloads) throws(VMError) -> Int32 {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty, bytes.count <= nameMax, !bytes.contains(0), !bytes.contains(UInt8(ascii: "/")) else {
            throw .config("tap name \"\(name)\" must be 1-\(nameMax) bytes without '/' or NUL")
        }
        guard let path = netnsPath else { return try openHere(bytes, name, vnetHeader) }
        return try NetworkNamespace.run(in: path) { () throws(VMError) in try openHere(bytes, name, vnetHeader) }
    }

    private static func openHere(_ name: [UInt8], _ display: String, _ vnetHeader: Bool) throws(VMError) -> Int32 {
        let fd = Glibc.open("/dev/net/tun", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw .file(SystemError.last("open /dev/net/tun")) }
        var ifr = [UInt8](repeating: 0, count: 40) // struct ifreq: name[16], then ifr_flags
        for (i, b) in name.enumerated() { ifr[i] = b }
        withUnsafeBytes(of: (iffTap | iffNoPI | (vnetHeader ? iffVnetHdr : 0)).littleEndian) { ifr[16] = $0[0]; ifr[17] = $0[1] }
        let rc = ifr.withUnsafeMutableBytes { brig_ioctl_ptr(fd, tunSetIff, $0.baseAddress) }
        guard rc == 0 else {
            let e = errno; close(fd)
            throw .config("creating tap \(display) (TUNSETIFF): \(String(cString: strerror(e)))")
        }
        return fd
    }
}

/// Runs code in another network namespace. Only the calling thread moves (setns of
/// CLONE_NEWNET is per thread, and processes it spawns start there too); it is moved back
/// before returning, and a thread that cannot get back is a fatal error.
public enum NetworkNamespace {
    static let cloneNewNet: Int32 = 0x4000_0000

    public static func run<T>(in path: String, _ body: () throws(VMError) -> T) throws(VMError) -> T {
        let home = Glibc.open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
        guard home >= 0 else { throw .file(SystemError.last("open /proc/thread-self/ns/net")) }
        defer { close(home) }
        let target = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard target >= 0 else { throw .file(SystemError.last("open network namespace \(path)")) }
        defer { close(target) }
        guard brig_setns(target, cloneNewNet) == 0 else {
            throw .config("entering network namespace \(path): \(String(cString: strerror(errno)))")
        }
        let result = Result { () throws(VMError) in try body() }
        guard brig_setns(home, cloneNewNet) == 0 else { fatalError("cannot return from network namespace \(path): errno \(errno)") }
        return try result.get()
    }
}
