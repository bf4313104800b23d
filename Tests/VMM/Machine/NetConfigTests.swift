import Testing
import Glibc
@testable import BrigVMM

@Test func netFlagsParse() throws {
    let o = try VMCommand.parse(["--kernel", "k", "--net-tap", "tap0", "--net-mac", "02:aa:bb:cc:dd:0e", "--net-mtu", "9000"])
    #expect(o.config.net == NetConfig(tapName: "tap0", mac: [0x02, 0xAA, 0xBB, 0xCC, 0xDD, 0x0E], mtu: 9000))
    #expect(try VMCommand.parse(["--kernel", "k"]).config.net == nil)
    #expect(throws: VMCommand.ParseError.badValue(option: "--net-mac", value: "02:aa:bb:cc:dd")) {
        try VMCommand.parse(["--kernel", "k", "--net-mac", "02:aa:bb:cc:dd"])
    }
    #expect(throws: VMCommand.ParseError.badValue(option: "--net-mtu", value: "67")) { try VMCommand.parse(["--net-mtu", "67"]) }
    #expect(NetConfig.parseMAC("02:aa:bb:cc:dd:0g") == nil)
    #expect(NetConfig.parseMAC("2:aa:bb:cc:dd:0e") == nil)
}

@Test func tapNamesAndNamespacePathsAreChecked() {
    for bad in ["", "a/b", String(repeating: "t", count: 16)] {
        #expect(throws: VMError.self) { try Tap.open(name: bad, netnsPath: nil) }
    }
    #expect(throws: VMError.self) { try Tap.open(name: "brigtap0", netnsPath: "/nonexistent/netns") }
}

/// A non-persistent tap exists while its fd is open, in the namespace it was opened in, and
/// the calling thread is back in its own namespace afterwards.
@Test(.enabled(if: getuid() == 0 && access("/dev/net/tun", R_OK | W_OK) == 0, "needs root and /dev/net/tun"))
func tapIsCreatedInTheNamespaceAndGoesAwayWithItsFD() throws {
    let name = "brigt\(getpid() % 100_000)"
    func ownNetns() -> String { (try? String(cString: Array(readlinkBytes("/proc/thread-self/ns/net")) + [0])) ?? "" }
    let before = ownNetns()
    let fd = try Tap.open(name: name, netnsPath: "/proc/self/ns/net")
    #expect(ownNetns() == before)
    #expect(access("/sys/class/net/\(name)", F_OK) == 0)
    close(fd)
    #expect(access("/sys/class/net/\(name)", F_OK) != 0)
}

private func readlinkBytes(_ p: String) throws -> [UInt8] {
    var buf = [UInt8](repeating: 0, count: 256)
    let n = buf.withUnsafeMutableBufferPointer { readlink(p, UnsafeMutableRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), 255) }
    return n > 0 ? Array(buf[0..<n]) : []
}

/// In another namespace (made with ip netns, as CNI does): the tap is there, not here.
@Test(.enabled(if: getuid() == 0 && access("/dev/net/tun", R_OK | W_OK) == 0 && access("/usr/sbin/ip", X_OK) == 0,
               "needs root, /dev/net/tun and ip"))
func tapIsCreatedInsideAnotherNamespace() throws {
    let ns = "brig-tap-test-\(getpid())", name = "brigt\(getpid() % 100_000)"
    #expect(system("/usr/sbin/ip netns add \(ns)") == 0)
    defer { _ = system("/usr/sbin/ip netns delete \(ns)") }
    let fd = try Tap.open(name: name, netnsPath: "/run/netns/\(ns)")
    #expect(access("/sys/class/net/\(name)", F_OK) != 0)
    #expect(system("/usr/sbin/ip -n \(ns) link show \(name) >/dev/null") == 0)
    close(fd)
    #expect(system("/usr/sbin/ip -n \(ns) link show \(name) >/dev/null 2>&1") != 0)
}
