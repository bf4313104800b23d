import BrigAgentProtocol
import BrigCore
import BrigLinux
import Glibc

/// Applies an `AgentNetwork` to the guest's virtio-net interface over rtnetlink, as Kata's agent
/// does (the guest has no iproute2): the link's MAC, MTU and IFF_UP in one RTM_NEWLINK, then each
/// address (IPv6 without duplicate address detection: the address is the namespace's, already
/// unique on the link) and each route in the order `validated()` gives (on-link first, default
/// last). Only the agent a guest's PID 1 started does this (`AgentServer.inGuest`): an agent on
/// the host (the host-agent test transport) must never reconfigure the host's interfaces.
enum GuestNetworkSetup {
    static func apply(_ n: AgentNetwork, inGuest: Bool, sysClassNet: String = "/sys/class/net") throws(RuntimeError) {
        guard inGuest else { throw RuntimeError(.unsupported, "network: only the agent of a VM configures interfaces (this one serves the host)") }
        let v: AgentNetwork.Valid
        do { v = try n.validated() } catch { throw RuntimeError(.config, error.message) }
        let name = try interface(for: v.mac, sysClassNet: sysClassNet)
        let index = Int32(bitPattern: if_nametoindex(name))
        guard index > 0 else { throw RuntimeError.wrap(SystemError.last("if_nametoindex \(name)")) }
        let nl = try Netlink()
        defer { close(nl.fd) }
        try nl.request(Netlink.link(index: index, mac: v.mac, mtu: v.mtu), "setting \(name)'s MAC, MTU \(v.mtu) and up")
        for a in v.addresses {
            try nl.request(Netlink.address(index: index, a.ip, prefixLength: a.prefixLength), "adding \(a.ip)/\(a.prefixLength) to \(name)")
        }
        for r in v.routes {
            let what = "\(r.destination)/\(r.prefixLength)" + (r.gateway.map { " via \($0)" } ?? "") + " dev \(name)"
            try nl.request(Netlink.route(index: index, r), "adding the route \(what)")
        }
    }

    /// The interface that has `mac` (the VMM gave it the veth's), else the only one besides lo.
    static func interface(for mac: [UInt8], sysClassNet: String) throws(RuntimeError) -> String {
        let names = ((try? Files.list(sysClassNet)) ?? []).filter { $0 != "lo" }.sorted()
        let want = AgentNetwork.formatMAC(mac)
        if let n = names.first(where: { (try? Files.readString("\(sysClassNet)/\($0)/address"))?.filter({ !$0.isWhitespace }) == want }) { return n }
        guard names.count == 1 else {
            throw RuntimeError(.config, "network.mac: no interface has \(want), and the guest has \(names.count) besides lo (\(names.joined(separator: ", ")))")
        }
        return names[0]
    }
}

/// A NETLINK_ROUTE socket and the few messages the agent sends (pure builders, tested).
struct Netlink {
    let fd: Int32
    static let newLink: UInt16 = 16, newAddr: UInt16 = 20, newRoute: UInt16 = 24, error: UInt16 = 2
    static let fRequest: UInt16 = 0x1, fAck: UInt16 = 0x4, fReplace: UInt16 = 0x100, fCreate: UInt16 = 0x400
    static let iflaAddress: UInt16 = 1, iflaMTU: UInt16 = 4
    static let ifaAddress: UInt16 = 1, ifaLocal: UInt16 = 2, ifaFlags: UInt16 = 8, ifaFNoDAD: UInt32 = 0x02
    static let rtaDst: UInt16 = 1, rtaOIF: UInt16 = 4, rtaGateway: UInt16 = 5, rtaPriority: UInt16 = 6

    init() throws(RuntimeError) {
        fd = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0 /* NETLINK_ROUTE */)
        guard fd >= 0 else { throw RuntimeError.wrap(SystemError.last("socket(AF_NETLINK)")) }
    }

    /// Sends one request and waits for its acknowledgement.
    func request(_ message: [UInt8], _ what: String) throws(RuntimeError) {
        guard send(fd, message, message.count, 0) == message.count else { throw RuntimeError.wrap(SystemError.last(what)) }
        var buf = [UInt8](repeating: 0, count: 8192)
        while true {
            let n = recv(fd, &buf, buf.count, 0)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw RuntimeError.wrap(SystemError.last("\(what): netlink reply")) }
            switch Self.ackError(Array(buf[0..<n])) {
            case .some(0): return
            case .some(let e): throw RuntimeError(.system, "network: \(what): \(String(cString: strerror(e)))")
            case nil: continue // not our ack (nothing else is subscribed): read on
            }
        }
    }

    /// The errno of the first NLMSG_ERROR in a reply (0: acknowledged); nil when it has none.
    static func ackError(_ reply: [UInt8]) -> Int32? {
        var at = 0
        while at + 16 <= reply.count {
            let len = Int(le32(reply, at)), type = UInt16(reply[at + 4]) | UInt16(reply[at + 5]) << 8
            guard len >= 16, at + len <= reply.count else { return nil }
            if type == error, len >= 20 { return -Int32(bitPattern: le32(reply, at + 16)) }
            at += (len + 3) & ~3
        }
        return nil
    }

    static func le32(_ b: [UInt8], _ at: Int) -> UInt32 { (0..<4).reduce(UInt32(0)) { $0 | UInt32(b[at + $1]) << (8 * $1) } }
    static func bytes<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }

    /// nlmsghdr + body + attributes (each 4-byte aligned).
    static func message(_ type: UInt16, flags: UInt16, _ body: [UInt8], _ attrs: [(UInt16, [UInt8])]) -> [UInt8] {
        var payload = body
        for (t, data) in attrs {
            payload += bytes(UInt16(4 + data.count)) + bytes(t) + data
            payload += [UInt8](repeating: 0, count: (4 - data.count % 4) % 4)
        }
        return bytes(UInt32(16 + payload.count)) + bytes(type) + bytes(fRequest | fAck | flags) + bytes(UInt32(1)) + bytes(UInt32(0)) + payload
    }

    /// RTM_NEWLINK: ifinfomsg (AF_UNSPEC, index, IFF_UP set and changed), MAC and MTU.
    static func link(index: Int32, mac: [UInt8], mtu: UInt32) -> [UInt8] {
        let body = [UInt8(AF_UNSPEC), 0] + bytes(UInt16(0)) + bytes(index) + bytes(UInt32(1)) + bytes(UInt32(1))
        return message(newLink, flags: 0, body, [(iflaAddress, mac), (iflaMTU, bytes(mtu))])
    }

    /// RTM_NEWADDR: ifaddrmsg, IFA_LOCAL and IFA_ADDRESS; IPv6 with IFA_F_NODAD.
    static func address(index: Int32, _ ip: AgentNetwork.IP, prefixLength: Int) -> [UInt8] {
        let body = [UInt8(ip.isV6 ? AF_INET6 : AF_INET), UInt8(prefixLength), 0, 0] + bytes(UInt32(bitPattern: index))
        var attrs: [(UInt16, [UInt8])] = [(ifaLocal, ip.bytes), (ifaAddress, ip.bytes)]
        if ip.isV6 { attrs.append((ifaFlags, bytes(ifaFNoDAD))) }
        return message(newAddr, flags: fCreate | fReplace, body, attrs)
    }

    /// RTM_NEWROUTE in the main table (proto boot, unicast): scope link without a gateway.
    static func route(index: Int32, _ r: AgentNetwork.Valid.Route) -> [UInt8] {
        let family = UInt8(r.destination.isV6 ? AF_INET6 : AF_INET)
        let scope: UInt8 = r.gateway == nil ? 253 : 0
        let body = [family, UInt8(r.prefixLength), 0, 0, 254 /* main */, 3 /* boot */, scope, 1 /* unicast */] + bytes(UInt32(0))
        var attrs: [(UInt16, [UInt8])] = [(rtaOIF, bytes(UInt32(bitPattern: index)))]
        if r.prefixLength > 0 { attrs.append((rtaDst, r.destination.bytes)) }
        if let g = r.gateway { attrs.append((rtaGateway, g.bytes)) }
        if let m = r.metric { attrs.append((rtaPriority, bytes(m))) }
        return message(newRoute, flags: fCreate | fReplace, body, attrs)
    }
}
