#if canImport(Glibc)
import Glibc
#endif
import BrigAgentProtocol

/// Reading the engine's interface: its addresses (getifaddrs, in the calling thread's network
/// namespace) and routes (the thread's /proc/net/route and ipv6_route, parsed by the pure
/// functions below, which take whatever the file holds: malformed lines are skipped).
extension GuestNetwork {
    /// IPv4 and IPv6 addresses of `interface`, without IPv6 link-local ones (the guest's
    /// kernel derives the same fe80:: address from the same MAC).
    static func interfaceAddresses(_ interface: String) -> [AgentNetwork.Address] {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else { return [] }
        defer { freeifaddrs(list) }
        var out: [AgentNetwork.Address] = [], p = list
        while let e = p {
            defer { p = e.pointee.ifa_next }
            guard let name = e.pointee.ifa_name, String(cString: name) == interface,
                  let a = e.pointee.ifa_addr, let m = e.pointee.ifa_netmask else { continue }
            let (ip, mask): ([UInt8], [UInt8])
            switch Int32(a.pointee.sa_family) {
            case AF_INET:
                ip = a.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { withUnsafeBytes(of: $0.pointee.sin_addr) { Array($0) } }
                mask = m.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { withUnsafeBytes(of: $0.pointee.sin_addr) { Array($0) } }
            case AF_INET6:
                ip = a.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { withUnsafeBytes(of: $0.pointee.sin6_addr) { Array($0) } }
                mask = m.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { withUnsafeBytes(of: $0.pointee.sin6_addr) { Array($0) } }
            default: continue
            }
            guard let addr = AgentNetwork.IP(bytes: ip), let len = prefixLength(mask), !isLinkLocal(addr) else { continue }
            out.append(.init(addr.description, prefixLength: len))
        }
        return out
    }

    /// The prefix length of a contiguous netmask; nil otherwise.
    static func prefixLength(_ mask: [UInt8]) -> Int? {
        var bits: [Bool] = []
        for b in mask { for i in 0..<8 { bits.append(b & (UInt8(0x80) >> UInt8(i)) != 0) } }
        let n = bits.prefix { $0 }.count
        return bits.dropFirst(n).contains(true) ? nil : n
    }

    static func isLinkLocal(_ ip: AgentNetwork.IP) -> Bool { ip.isV6 && ip.bytes[0] == 0xFE && ip.bytes[1] & 0xC0 == 0x80 }

    /// IPv4 routes of `interface` from /proc/net/route (the main table; hex fields in the
    /// kernel's byte order): every route that is up and not a reject route.
    static func ipv4Routes(table: String, interface: String) -> [AgentNetwork.Route] {
        var out: [AgentNetwork.Route] = []
        for line in table.split(separator: "\n").dropFirst() {
            let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard f.count >= 8, f[0] == interface, f[1].count == 8, f[2].count == 8, f[7].count == 8,
                  let dst = UInt32(f[1], radix: 16), let gw = UInt32(f[2], radix: 16), let flags = UInt32(f[3], radix: 16),
                  let metric = UInt32(f[6]), let mask = UInt32(f[7], radix: 16),
                  flags & 0x1 != 0, flags & 0x200 == 0 else { continue }
            func ip(_ v: UInt32) -> AgentNetwork.IP { AgentNetwork.IP(bytes: withUnsafeBytes(of: v.littleEndian) { Array($0) })! }
            guard let len = prefixLength(ip(mask).bytes) else { continue }
            let gateway = flags & 0x2 != 0 ? ip(gw).description : nil
            out.append(.init("\(ip(dst).masked(len))/\(len)", gateway: gateway, metric: metric == 0 ? nil : metric))
        }
        return out
    }

    /// IPv6 routes of `interface` from /proc/net/ipv6_route (every table): those that are up and
    /// not local, anycast, cached, reject or learnt from router advertisements (the guest hears
    /// those itself), and not multicast or link-local (the guest's kernel adds those on link-up).
    static func ipv6Routes(table: String, interface: String) -> [AgentNetwork.Route] {
        var out: [AgentNetwork.Route] = []
        for line in table.split(separator: "\n") {
            let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard f.count >= 10, f[9] == interface, let dst = hex16(f[0]), let len = Int(f[1], radix: 16), len <= 128,
                  f[3] == "00", let hop = hex16(f[4]), let metric = UInt32(f[5], radix: 16), let flags = UInt32(f[8], radix: 16),
                  flags & 0x1 != 0, flags & (0x8000_0000 | 0x10_0000 | 0x100_0000 | 0x200 | 0x4_0000) == 0,
                  dst.bytes[0] != 0xFF, !(isLinkLocal(dst) && len >= 10) else { continue }
            let gateway = flags & 0x2 != 0 && hop.bytes.contains(where: { $0 != 0 }) ? hop.description : nil
            out.append(.init("\(dst.masked(len))/\(len)", gateway: gateway, metric: metric))
        }
        return out
    }

    static func hex16(_ s: Substring) -> AgentNetwork.IP? {
        guard s.count == 32 else { return nil }
        var b: [UInt8] = [], i = s.startIndex
        while i < s.endIndex {
            let j = s.index(i, offsetBy: 2)
            guard let v = UInt8(s[i..<j], radix: 16) else { return nil }
            b.append(v); i = j
        }
        return AgentNetwork.IP(bytes: b)
    }

    /// Drops the routes the guest's kernel makes when the address is added (the connected
    /// prefix of each address, without a gateway).
    static func withoutConnected(_ routes: [AgentNetwork.Route], addresses: [AgentNetwork.Address]) -> [AgentNetwork.Route] {
        let connected = Set(addresses.compactMap { a in AgentNetwork.IP(a.address).map { "\($0.masked(a.prefixLength))/\(a.prefixLength)" } })
        return routes.filter { $0.gateway != nil || !connected.contains($0.destination) }
    }
}
