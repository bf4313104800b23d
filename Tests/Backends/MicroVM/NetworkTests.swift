import BrigAgentProtocol
import BrigCore
import BrigDevices
import BrigGuestMemory
import BrigLinux
import BrigOCI
import BrigVMM
import Glibc
import Testing
@testable import BrigMicroVM

@Test func routeTablesAreParsedAndWhatTheGuestKernelMakesIsLeftOut() {
    // /proc/net/route as a namespace with a default and a second route has it, plus junk.
    let v4 = """
    Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
    eth0\t00000000\t0100580A\t0003\t0\t0\t0\t00000000\t0\t0\t0
    eth0\t0000580A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
    eth0\t0000630A\tFE00580\t0003\t0\t0\t100\t0000FFFF\t0\t0\t0
    eth0\t0000630A\tFE00580A\t0003\t0\t0\t100\t0000FFFF\t0\t0\t0
    eth0\t0101A8C0\t00000000\t0005\t0\t0\t0\tFFFFFFFF\t0\t0\t0
    eth0\t0000000B\t00000000\t0201\t0\t0\t0\t000000FF\t0\t0\t0
    eth0\t0000000C\t00000000\t0000\t0\t0\t0\t000000FF\t0\t0\t0
    eth0\t0000000D\t00000000\t0001\t0\t0\t0\t00FF00FF\t0\t0\t0
    eth0\t0500580A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
    eth1\t00000000\t0100580A\t0003\t0\t0\t0\t00000000\t0\t0\t0
    eth0\tZZZZZZZZ\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0
    eth0\t00000000\t0100580A\t0003
    eth0\t000000000\t0100580A\t0003\t0\t0\t0\t00000000\t0\t0\t0
    """
    let r4 = GuestNetwork.ipv4Routes(table: v4, interface: "eth0")
    #expect(r4 == [.init("0.0.0.0/0", gateway: "10.88.0.1"), .init("10.88.0.0/16"), .init("10.99.0.0/16", gateway: "10.88.0.254", metric: 100),
                   .init("192.168.1.1/32"), .init("10.88.0.0/16")])  // host bits masked; reject, down, non-contiguous masks dropped
    // /proc/net/ipv6_route of a namespace with fd00::2/64 and a default via fd00::1 (real output).
    let v6 = """
    fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
    fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000002 00000000 00000001     eth0
    00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000003 00000000 00000003     eth0
    00000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000002 00000000 80200001       lo
    fd000000000000000000000000000002 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000004 00000000 80200001     eth0
    fe8000000000000000fc00fffe000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000003 00000000 80200001     eth0
    ff000000000000000000000000000000 08 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000002 00000000 00000001     eth0
    fd000000000000000000000000000000 40 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000003 00000000 00040003     eth0
    fd010000000000000000000000000000 ff 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
    fd020000000000000000000000000000 30 fd000000000000000000000000000000 40 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
    fd03000000000000000000000000000 30 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
    fd040000000000000000000000000000 30 00000000000000000000000000000000 00 fe80000000000000000000000000000g 00000100 00000001 00000000 00000003     eth0
    fd050000000000000000000000000000 30 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000100 00000001 00000000 00000003     eth0
    """
    let r6 = GuestNetwork.ipv6Routes(table: v6, interface: "eth0")
    #expect(r6 == [.init("fd00::/64", metric: 256), .init("::/0", gateway: "fd00::1", metric: 1024),
                   .init("fd05::/48", gateway: "fe80::1", metric: 256)]) // RA-learnt, >128, source-routed, malformed: dropped
    let addresses: [AgentNetwork.Address] = [.init("10.88.0.5", prefixLength: 16), .init("fd00::2", prefixLength: 64)]
    #expect(GuestNetwork.withoutConnected(r4 + r6, addresses: addresses) == [
        .init("0.0.0.0/0", gateway: "10.88.0.1"), .init("10.99.0.0/16", gateway: "10.88.0.254", metric: 100), .init("192.168.1.1/32"),
        .init("::/0", gateway: "fd00::1", metric: 1024), .init("fd05::/48", gateway: "fe80::1", metric: 256)])
    #expect(GuestNetwork.ipv4Routes(table: "", interface: "eth0").isEmpty && GuestNetwork.ipv6Routes(table: "\n\n", interface: "eth0").isEmpty)
    #expect(GuestNetwork.prefixLength([255, 255, 240, 0]) == 20 && GuestNetwork.prefixLength([255, 0, 255, 0]) == nil)
    #expect(GuestNetwork.prefixLength([UInt8](repeating: 255, count: 16)) == 128 && GuestNetwork.prefixLength([0, 0, 0, 0]) == 0)
    // What the agent gets validates (it checks again, as it must).
    let n = GuestNetwork(netnsPath: "/run/netns/x", interface: "eth0", tap: GuestNetwork.tapName, mac: [2, 0x42, 0x0A, 0x58, 0, 5], mtu: 1500,
                         addresses: addresses, routes: GuestNetwork.withoutConnected(r4 + r6, addresses: addresses))
    #expect(n.agentNetwork.mac == "02:42:0a:58:00:05")
    #expect(throws: Never.self) { try n.agentNetwork.validated() }
}

/// A namespace prepared as CNI's bridge plugin leaves it (a veth with an address and a default
/// route): discovery reads it; connect mirrors the veth and the VMM's tap both ways; cleanUp
/// leaves no qdisc or filter.
@Test(.enabled(if: getuid() == 0 && access("/usr/sbin/ip", X_OK) == 0 && access("/dev/net/tun", R_OK) == 0, "needs root, ip and /dev/net/tun"))
func namespaceIsDiscoveredConnectedAndCleanedUp() throws {
    let ns = "brig-net-\(getpid())", host = "bnh\(getpid() % 100_000)"
    func sh(_ c: String) -> Int32 { system(c) }
    #expect(sh("/usr/sbin/ip netns add \(ns)") == 0)
    defer { _ = sh("/usr/sbin/ip netns delete \(ns); /usr/sbin/ip link del \(host) 2>/dev/null") }
    #expect(sh("/usr/sbin/ip link add \(host) type veth peer name eth0 netns \(ns)") == 0)
    #expect(sh("/usr/sbin/ip addr add 10.213.77.1/24 dev \(host) && /usr/sbin/ip link set \(host) up") == 0)
    #expect(sh("/usr/sbin/ip -n \(ns) link set eth0 address 02:42:0a:58:00:05 mtu 1400 up") == 0)
    #expect(sh("/usr/sbin/ip -n \(ns) addr add 10.213.77.5/24 dev eth0 && /usr/sbin/ip -n \(ns) route add default via 10.213.77.1") == 0)
    #expect(sh("/usr/sbin/ip -n \(ns) route add 10.213.78.0/24 via 10.213.77.254 metric 7") == 0)
    #expect(sh("/usr/sbin/ip -n \(ns) addr add fd00:213:77::5/64 dev eth0 nodad && /usr/sbin/ip -n \(ns) -6 route add default via fd00:213:77::1") == 0)
    let path = "/run/netns/\(ns)"
    let n = try GuestNetwork.discover(netnsPath: path, field: "linux.namespaces[1].path")
    #expect(n == GuestNetwork(netnsPath: path, interface: "eth0", tap: GuestNetwork.tapName, mac: [0x02, 0x42, 0x0A, 0x58, 0x00, 0x05],
                              mtu: 1400, addresses: [.init("10.213.77.5", prefixLength: 24), .init("fd00:213:77::5", prefixLength: 64)],
                              routes: [.init("0.0.0.0/0", gateway: "10.213.77.1"), .init("10.213.78.0/24", gateway: "10.213.77.254", metric: 7),
                                       .init("::/0", gateway: "fd00:213:77::1", metric: 1024)]))

    var dir = Array("/tmp/brig-net-XXXXXX".utf8CString)
    let stateDir = String(cString: try #require(mkdtemp(&dir)))
    defer { rmdir(stateDir) }
    try n.record(stateDir: stateDir)
    let tap = try Tap.open(name: n.tap, netnsPath: path, vnetHeader: false) // plain frames, read and written here
    defer { close(tap) }
    try n.connect()
    #expect(sh("/usr/sbin/tc -n \(ns) filter show dev eth0 ingress | grep -q 'Egress Redirect to device \(n.tap)'") == 0)
    #expect(sh("/usr/sbin/tc -n \(ns) filter show dev \(n.tap) ingress | grep -q 'Egress Redirect to device eth0'") == 0)
    #expect(sh("/usr/sbin/ip -n \(ns) link show \(n.tap) | grep -q 'UP.*mtu 1400'") == 0)
    // Host → guest: an ARP request for the guest's address reaches the tap.
    sendUDP(to: "10.213.77.5")
    var sawARP = false, buf = [UInt8](repeating: 0, count: 2048)
    for _ in 0..<20 where !sawARP {                             // IPv6 chatter may come first
        var pfd = pollfd(fd: tap, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, 2000) == 1 else { break }
        let got = read(tap, &buf, buf.count)
        sawARP = got >= 42 && buf[12] == 0x08 && buf[13] == 0x06
    }
    #expect(sawARP)
    // Guest → host: a frame written to the tap leaves through the veth.
    let before = rxPackets(host)
    var arp = [UInt8](repeating: 0xFF, count: 6) + [0x02, 0x42, 0x0A, 0x58, 0x00, 0x05, 0x08, 0x06]
    arp += [UInt8](repeating: 0, count: 28)
    #expect(write(tap, arp, arp.count) == arp.count)
    usleep(200_000)
    let after = rxPackets(host)
    #expect(before >= 0 && after > before)
    try deviceCarriesFramesBothWays(n, tap: tap, host: host)
    // A tap opened for offloads: TapBackend finds IFF_VNET_HDR and the tap takes TUNSETOFFLOAD.
    do { // (closed at the end of the block: the tap goes)
        let vb = TapBackend(fd: try Tap.open(name: "tapv\(getpid() % 100_000)", netnsPath: path, vnetHeader: true))
        #expect(vb.vnetHeader && vb.setOffloads(1 | 2 | 4) && vb.setOffloads(0))
        #expect(!TapBackend(fd: dup(tap)).vnetHeader)
    }
    GuestNetwork.cleanUp(stateDir: stateDir)
    #expect(access(GuestNetwork.recordPath(stateDir), F_OK) != 0)
    #expect(sh("/usr/sbin/tc -n \(ns) qdisc show dev eth0 | grep -q ingress") != 0)
    #expect(sh("/usr/sbin/tc -n \(ns) qdisc show dev \(n.tap) | grep -q ingress") != 0)
    GuestNetwork.cleanUp(stateDir: stateDir) // idempotent
    // Another tool's ingress qdisc on the veth is not ours to replace or remove.
    #expect(sh("/usr/sbin/tc -n \(ns) qdisc add dev eth0 ingress") == 0)
    #expect { try GuestNetwork.discover(netnsPath: path, field: "linux.namespaces[1].path") } throws: {
        "\($0)".contains("linux.namespaces[1].path") && "\($0)".contains("already has an ingress qdisc")
    }
}

@Test func aNamespaceWithoutOneInterfaceIsRefusedNamingTheField() throws {
    guard getuid() == 0, access("/usr/sbin/ip", X_OK) == 0 else { return }
    let ns = "brig-net-empty-\(getpid())"
    #expect(system("/usr/sbin/ip netns add \(ns)") == 0)
    defer { _ = system("/usr/sbin/ip netns delete \(ns)") }
    #expect { try GuestNetwork.discover(netnsPath: "/run/netns/\(ns)", field: "linux.namespaces[2].path") } throws: {
        "\($0)".contains("linux.namespaces[2].path") && "\($0)".contains("0 interfaces")
    }
    #expect(throws: RuntimeError.self) { try GuestNetwork.discover(netnsPath: "/nonexistent", field: "f") }
}

private func rxPackets(_ dev: String) -> Int {
    ((try? Files.readString("/sys/class/net/\(dev)/statistics/rx_packets")).flatMap { Int($0.filter(\.isNumber)) }) ?? -1
}

/// One UDP datagram (port 9): the host resolves the address with ARP over the veth first.
private func sendUDP(to address: String) {
    let s = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
    defer { close(s) }
    var sa = sockaddr_in()
    sa.sin_family = sa_family_t(AF_INET); sa.sin_port = UInt16(9).bigEndian
    _ = inet_pton(AF_INET, address, &sa.sin_addr)
    var payload: [UInt8] = [1, 2, 3]
    _ = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(s, &payload, 3, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
}

@Test func networkNamespaceChoices() throws {
    func spec(_ nss: [Namespace]) -> Spec { var s = Spec(); s.linux = Linux(); s.linux?.namespaces = nss; return s }
    // No network namespace: the host's network, refused naming the field.
    #expect { try GuestNetwork.plan(spec([Namespace(type: "pid")]), kvm: true) } throws: {
        ($0 as? RuntimeError)?.message.hasPrefix("linux.namespaces: no network namespace") == true
    }
    #expect { try GuestNetwork.plan(Spec(), kvm: true) } throws: { _ in true }
    // A new one: loopback only, nothing to connect.
    #expect(try GuestNetwork.plan(spec([Namespace(type: "pid"), Namespace(type: "network")]), kvm: true) == nil)
    // A path needs the kvm transport, and must exist.
    let joined = spec([Namespace(type: "pid"), Namespace(type: "network", path: "/nonexistent/ns")])
    #expect { try GuestNetwork.plan(joined, kvm: false) } throws: { ($0 as? RuntimeError)?.message.hasPrefix("linux.namespaces[1].path") == true }
    #expect { try GuestNetwork.plan(joined, kvm: true) } throws: { "\($0)".contains("/nonexistent/ns") }
    // The guest runs the container in its own network namespace (where eth0 is).
    #expect(GuestNetwork.guestSpec(joined).linux?.namespaces == [Namespace(type: "pid")])
    #expect(GuestNetwork.guestSpec(spec([Namespace(type: "network")])).linux?.namespaces == [Namespace(type: "network")])
    // Other host namespaces are still refused by checkSupported; a network path is not.
    #expect(throws: Never.self) { try MicroVMBackend.checkSupported(joined, options: CreateOptions(id: "c", bundle: "/b", spec: joined)) }
    let ipc = spec([Namespace(type: "ipc", path: "/proc/1/ns/ipc")])
    #expect(throws: RuntimeError.self) { try MicroVMBackend.checkSupported(ipc, options: CreateOptions(id: "c", bundle: "/b", spec: ipc)) }
}

/// The virtio-net device on the mirrored tap, driven from plain memory: an ARP request from
/// the host side lands in a guest rx buffer after the 12-byte header, and a frame the "guest"
/// puts on tx leaves through the veth.
private func deviceCarriesFramesBothWays(_ n: GuestNetwork, tap: Int32, host: String) throws {
    let net = try VirtioNet(mac: n.mac, mtu: n.mtu, backend: TapBackend(fd: dup(tap)))
    let mem = try GuestMemory(regions: [GuestRegion(guestBase: 0, size: 0x100000)])
    func ring(_ base: UInt64) -> Virtqueue {
        var q = Virtqueue(maxSize: 32)
        q.size = 32; q.descTable = base; q.availRing = base + 0x1000; q.usedRing = base + 0x2000; q.ready = true
        return q
    }
    var rx = ring(0x1000), tx = ring(0x4000)
    for i in 0..<32 {
        let d = UInt64(0x1000 + 16 * i)
        try mem.store(UInt64(0x10000 + i * 0x1000), at: d); try mem.store(UInt32(2048), at: d + 8); try mem.store(Virtqueue.descWrite, at: d + 12)
        try mem.store(UInt16(i), at: 0x2004 + 2 * UInt64(i))
    }
    try mem.store(UInt16(32), at: 0x2002)
    _ = try net.process(queue: VirtioNet.rxQueue, &rx, memory: mem) // the guest has buffers now
    sendUDP(to: "10.213.77.5")
    var sawARP = false, seen: UInt16 = 0
    for _ in 0..<40 where !sawARP {
        _ = net.pollBackend(timeoutMs: 100) { _ = try? net.process(queue: VirtioNet.rxQueue, &rx, memory: mem) }
        let usedIdx: UInt16 = try mem.load(at: 0x3002)
        while seen != usedIdx {
            let e = 0x3004 + 8 * UInt64(seen % 32)
            let id: UInt32 = try mem.load(at: e), len: UInt32 = try mem.load(at: e + 4)
            let f = try mem.read(0x10000 + UInt64(id) * 0x1000, count: Int(len))
            if len >= 12 + 42, f[10] == 1, f[12 + 12] == 0x08, f[12 + 13] == 0x06 { sawARP = true }
            seen &+= 1
        }
    }
    #expect(sawARP)
    let before = rxPackets(host)
    let frame = [UInt8](repeating: 0, count: 12) + [UInt8](repeating: 0xFF, count: 6) + n.mac + [0x08, 0x06] + [UInt8](repeating: 0, count: 28)
    try mem.write(frame, at: 0x40000)
    try mem.store(UInt64(0x40000), at: 0x4000); try mem.store(UInt32(frame.count), at: 0x4008)
    try mem.store(UInt16(0), at: 0x5004); try mem.store(UInt16(1), at: 0x5002)
    #expect(try net.process(queue: VirtioNet.txQueue, &tx, memory: mem))
    usleep(200_000)
    #expect(net.stats.txFrames == 1)
    #expect(rxPackets(host) > before)
    net.stop()
}
