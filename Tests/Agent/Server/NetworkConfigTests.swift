import BrigAgentProtocol
import BrigCore
import BrigLinux
import FoundationEssentials
import Glibc
import Testing
@testable import BrigAgent

/// The network description the agent receives is hostile: every field is checked and the
/// error names it; nothing malformed reaches rtnetlink.
@Suite struct NetworkConfigTests {
    static let good = AgentNetwork(mac: "02:42:0a:58:00:05", mtu: 1400,
                                   addresses: [.init("10.88.0.5", prefixLength: 16), .init("fd00::5", prefixLength: 64)],
                                   routes: [.init("0.0.0.0/0", gateway: "10.88.0.1"), .init("::/0", gateway: "fe80::1", metric: 1024),
                                            .init("10.99.0.0/16", gateway: "169.254.1.1"), .init("169.254.1.1/32")])

    @Test func aNamespaceLikeDescriptionIsValidAndOrdered() throws {
        let v = try Self.good.validated()
        #expect(v.mac == [0x02, 0x42, 0x0A, 0x58, 0x00, 0x05] && v.mtu == 1400)
        #expect(v.addresses.map { "\($0.ip)/\($0.prefixLength)" } == ["10.88.0.5/16", "fd00::5/64"])
        // On-link first (the gateway 169.254.1.1 needs it), then via a gateway, defaults last.
        #expect(v.routes.map { "\($0.destination)/\($0.prefixLength)" } == ["169.254.1.1/32", "10.99.0.0/16", "0.0.0.0/0", "::/0"])
        #expect(v.routes[3].gateway?.description == "fe80::1" && v.routes[3].metric == 1024)
        // It survives the wire (a request frame's JSON).
        let wire = try AgentCoding.encode(AgentRequest.network(Self.good))
        #expect(try AgentCoding.decode(AgentRequest.self, wire) == .network(Self.good))
    }

    @Test(arguments: [
        ("mac", { (n: inout AgentNetwork) in n.mac = "02:42:0a:58:00" }),
        ("mac", { (n: inout AgentNetwork) in n.mac = "02:42:0a:58:00:zz" }),
        ("mac", { (n: inout AgentNetwork) in n.mac = "02:42:0a:58:00:5" }),
        ("mac", { (n: inout AgentNetwork) in n.mac = "+2:42:0a:58:00:05" }),
        ("mac", { (n: inout AgentNetwork) in n.mac = "01:00:5e:00:00:01" }),     // multicast
        ("mac", { (n: inout AgentNetwork) in n.mac = "00:00:00:00:00:00" }),
        ("mac", { (n: inout AgentNetwork) in n.mac = String(repeating: "a", count: 100_000) }),
        ("mtu", { (n: inout AgentNetwork) in n.mtu = 67 }),
        ("mtu", { (n: inout AgentNetwork) in n.mtu = 65536 }),
        ("mtu", { (n: inout AgentNetwork) in n.mtu = -1 }),
        ("addresses[0].address", { (n: inout AgentNetwork) in n.addresses[0].address = "10.88.0.256" }),
        ("addresses[0].address", { (n: inout AgentNetwork) in n.addresses[0].address = "10.88.0.5\u{0}1.2.3.4" }),
        ("addresses[0].address", { (n: inout AgentNetwork) in n.addresses[0].address = " 10.88.0.5" }),
        ("addresses[0].address", { (n: inout AgentNetwork) in n.addresses[0].address = "10.88.0.5/16" }),
        ("addresses[0].address", { (n: inout AgentNetwork) in n.addresses[0].address = "" }),
        ("addresses[0].address", { (n: inout AgentNetwork) in n.addresses[0].address = "0.0.0.0" }),
        ("addresses[0].address", { (n: inout AgentNetwork) in n.addresses[0].address = "224.0.0.1" }),
        ("addresses[0].address", { (n: inout AgentNetwork) in n.addresses[0].address = "127.0.0.1" }),
        ("addresses[1].address", { (n: inout AgentNetwork) in n.addresses[1].address = "::1" }),
        ("addresses[1].address", { (n: inout AgentNetwork) in n.addresses[1].address = "fe80::1%eth0" }),
        ("addresses[1].address", { (n: inout AgentNetwork) in n.addresses[1].address = "fd00:::5" }),
        ("addresses[1].address", { (n: inout AgentNetwork) in n.mtu = 1279 }),        // IPv6 needs 1280
        ("addresses[0].prefixLength", { (n: inout AgentNetwork) in n.addresses[0].prefixLength = 33 }),
        ("addresses[0].prefixLength", { (n: inout AgentNetwork) in n.addresses[0].prefixLength = 0 }),
        ("addresses[1].prefixLength", { (n: inout AgentNetwork) in n.addresses[1].prefixLength = 129 }),
        ("addresses[1].prefixLength", { (n: inout AgentNetwork) in n.addresses[1].prefixLength = Int.min }),
        ("addresses", { (n: inout AgentNetwork) in n.addresses = Array(repeating: .init("10.0.0.1", prefixLength: 8), count: 65) }),
        ("routes", { (n: inout AgentNetwork) in n.routes = Array(repeating: .init("10.0.0.0/8"), count: 257) }),
        ("routes[0].destination", { (n: inout AgentNetwork) in n.routes[0].destination = "default" }),
        ("routes[0].destination", { (n: inout AgentNetwork) in n.routes[0].destination = "0.0.0.0" }),
        ("routes[0].destination", { (n: inout AgentNetwork) in n.routes[0].destination = "0.0.0.0/33" }),
        ("routes[0].destination", { (n: inout AgentNetwork) in n.routes[0].destination = "0.0.0.0/-0" }),
        ("routes[0].destination", { (n: inout AgentNetwork) in n.routes[0].destination = "0.0.0.0/+8" }),
        ("routes[0].destination", { (n: inout AgentNetwork) in n.routes[0].destination = "0.0.0.0/0/0" }),
        ("routes[0].destination", { (n: inout AgentNetwork) in n.routes[0].destination = "10.88.0.5/16" }), // host bits
        ("routes[0].destination", { (n: inout AgentNetwork) in n.routes[0].destination = "224.0.0.0/4" }),
        ("routes[0].destination", { (n: inout AgentNetwork) in n.routes[0].destination = "0.0.0.0/99999999999999999999" }),
        ("routes[0].gateway", { (n: inout AgentNetwork) in n.routes[0].gateway = "fd00::1" }),       // family
        ("routes[0].gateway", { (n: inout AgentNetwork) in n.routes[0].gateway = "0.0.0.0" }),
        ("routes[0].gateway", { (n: inout AgentNetwork) in n.routes[0].gateway = "10.88.0.1 " }),
        ("routes[1].gateway", { (n: inout AgentNetwork) in n.routes[1].gateway = "ff02::1" }),
    ] as [(String, @Sendable (inout AgentNetwork) -> Void)])
    func hostileFieldsAreRefusedNamingTheField(field: String, mutate: @Sendable (inout AgentNetwork) -> Void) {
        var n = Self.good
        mutate(&n)
        #expect { try n.validated() } throws: { e in
            let e = e as? AgentError
            return e?.code == .config && e?.message.hasPrefix("network.\(field): ") == true && (e?.message.count ?? 0) < 300
        }
    }

    @Test func hostileJSONIsAProtocolError() {
        for json in [#"{"network":{"_0":{"mac":"02:00:00:00:00:01","mtu":"1500","addresses":[],"routes":[]}}}"#,
                     #"{"network":{"_0":{"mac":"02:00:00:00:00:01","mtu":1500,"addresses":[{"address":1}],"routes":[]}}}"#,
                     #"{"network":{"_0":{"mac":"02:00:00:00:00:01","mtu":1e999,"addresses":[],"routes":[]}}}"#,
                     #"{"network":{}}"#, #"{"network":null}"#] {
            #expect { try AgentCoding.decode(AgentRequest.self, Array(json.utf8)) } throws: { ($0 as? AgentError)?.code == .protocolError }
        }
    }

    @Test func netlinkMessagesAreWhatTheKernelExpects() throws {
        let v = try Self.good.validated()
        let link = Netlink.link(index: 2, mac: v.mac, mtu: v.mtu)
        // nlmsghdr(16) + ifinfomsg(16) + IFLA_ADDRESS(4+6, padded to 12) + IFLA_MTU(8)
        #expect(link.count == 52 && Netlink.le32(link, 0) == 52)
        #expect(link[4] == 16 && link[6] == 0x05 && link[16] == UInt8(AF_UNSPEC) && Netlink.le32(link, 20) == 2 && Netlink.le32(link, 24) == 1)
        #expect(Array(link[32..<36]) == [10, 0, 1, 0] && Array(link[36..<42]) == v.mac && Array(link[44..<48]) == [8, 0, 4, 0])
        #expect(Netlink.le32(link, 48) == 1400)

        let a6 = Netlink.address(index: 2, v.addresses[1].ip, prefixLength: 64)
        #expect(a6[4] == 20 && a6[16] == UInt8(AF_INET6) && a6[17] == 64 && Netlink.le32(a6, 20) == 2)
        #expect(Array(a6[24..<28]) == [20, 0, 2, 0] && Array(a6[28..<44]) == v.addresses[1].ip.bytes)
        #expect(Array(a6[44..<48]) == [20, 0, 1, 0] && Array(a6[48..<64]) == v.addresses[1].ip.bytes)
        #expect(Array(a6[64..<68]) == [8, 0, 8, 0] && Netlink.le32(a6, 68) == Netlink.ifaFNoDAD && a6.count == 72)
        let a4 = Netlink.address(index: 2, v.addresses[0].ip, prefixLength: 16)
        #expect(a4.count == 40 && a4[16] == UInt8(AF_INET) && Array(a4[28..<32]) == [10, 88, 0, 5])

        let onLink = Netlink.route(index: 3, v.routes[0])
        #expect(onLink[4] == 24 && Array(onLink[16..<24]) == [UInt8(AF_INET), 32, 0, 0, 254, 3, 253, 1])
        #expect(Array(onLink[28..<32]) == [8, 0, 4, 0] && Netlink.le32(onLink, 32) == 3 && Array(onLink[36..<40]) == [8, 0, 1, 0])
        #expect(Array(onLink[40..<44]) == [169, 254, 1, 1] && onLink.count == 44)
        let def6 = Netlink.route(index: 3, v.routes[3])
        #expect(def6[17] == 0 && def6[22] == 0)           // prefix 0: no RTA_DST; universe scope
        #expect(Array(def6[36..<40]) == [20, 0, 5, 0] && Array(def6[40..<56]) == v.routes[3].gateway?.bytes)
        #expect(Array(def6[56..<60]) == [8, 0, 6, 0] && Netlink.le32(def6, 60) == 1024 && def6.count == 64)
        let flags = UInt16(def6[6]) | UInt16(def6[7]) << 8
        #expect(flags == Netlink.fRequest | Netlink.fAck | Netlink.fCreate | Netlink.fReplace)
    }

    @Test func acknowledgementsAreReadWithoutTrustingLengths() {
        func ack(_ errno: Int32, len: UInt32 = 36) -> [UInt8] {
            Netlink.bytes(len) + Netlink.bytes(UInt16(2)) + [0, 0] + Netlink.bytes(UInt32(1)) + Netlink.bytes(UInt32(0))
                + Netlink.bytes(UInt32(bitPattern: -errno)) + [UInt8](repeating: 0, count: 16)
        }
        #expect(Netlink.ackError(ack(0)) == 0)
        #expect(Netlink.ackError(ack(EEXIST)) == EEXIST)
        #expect(Netlink.ackError(ack(0, len: 1000)) == nil)       // longer than what arrived
        #expect(Netlink.ackError(ack(0, len: 3)) == nil)          // shorter than a header: no loop
        #expect(Netlink.ackError(Array(ack(0).prefix(15))) == nil)
        #expect(Netlink.ackError([]) == nil)
        let other = Netlink.bytes(UInt32(16)) + Netlink.bytes(UInt16(3)) + [UInt8](repeating: 0, count: 10)
        #expect(Netlink.ackError(other + ack(ENODEV)) == ENODEV)  // skips a message that is not an ack
    }

    @Test func onlyAnAgentInAGuestConfiguresInterfaces() throws {
        #expect { try GuestNetworkSetup.apply(Self.good, inGuest: false) } throws: {
            ($0 as? RuntimeError)?.kind == .unsupported && "\($0)".contains("only the agent of a VM")
        }
        // A host agent (the default) refuses the request over the protocol too.
        var dir = Array("/tmp/brig-agentnet-XXXXXX".utf8CString)
        let root = String(cString: try #require(mkdtemp(&dir)))
        defer { Files.removeAll(root) }
        let server = try AgentServer(stateRoot: root)
        #expect(!server.inGuest)
        #expect { _ = try server.perform(.network(Self.good), connection: -1, requestID: 1) } throws: {
            ($0 as? AgentError)?.code == .unsupported
        }
    }

    @Test func theInterfaceIsFoundByMACElseTheOnlyOne() throws {
        var dir = Array("/tmp/brig-sysnet-XXXXXX".utf8CString)
        let root = String(cString: try #require(mkdtemp(&dir)))
        defer { Files.removeAll(root) }
        func iface(_ name: String, _ mac: String) throws {
            try Files.mkdirAll(root + "/" + name, mode: 0o755)
            try Files.writeAtomically(root + "/\(name)/address", Array((mac + "\n").utf8))
        }
        try iface("lo", "00:00:00:00:00:00")
        try iface("eth0", "52:54:00:12:34:56")
        #expect(try GuestNetworkSetup.interface(for: [2, 0x42, 0x0A, 0x58, 0, 5], sysClassNet: root) == "eth0")
        try iface("eth1", "02:42:0a:58:00:05")
        #expect(try GuestNetworkSetup.interface(for: [2, 0x42, 0x0A, 0x58, 0, 5], sysClassNet: root) == "eth1")
        #expect { try GuestNetworkSetup.interface(for: [2, 0, 0, 0, 0, 9], sysClassNet: root) } throws: {
            "\($0)".contains("network.mac") && "\($0)".contains("eth0, eth1")
        }
    }
}
