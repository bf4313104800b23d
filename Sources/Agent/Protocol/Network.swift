#if canImport(Glibc)
import Glibc
#endif

/// The guest's network interface as the engine prepared its namespace on the host (Kata's
/// `Interface` + `Routes`): the MAC, MTU, every IPv4 and IPv6 address and every route of the
/// namespace's interface. The host reads it (BrigMicroVM's GuestNetwork) and the agent applies
/// it to the guest's virtio-net interface over rtnetlink before the container is created. The
/// agent treats it as hostile: `validated()` checks every field and names the one it refuses.
public struct AgentNetwork: Codable, Equatable, Sendable {
    public struct Address: Codable, Equatable, Sendable {
        /// Dotted quad or RFC 4291 text.
        public var address: String
        public var prefixLength: Int
        public init(_ address: String, prefixLength: Int) { self.address = address; self.prefixLength = prefixLength }
    }
    public struct Route: Codable, Equatable, Sendable {
        /// `A/N`; `0.0.0.0/0` or `::/0` is a default route.
        public var destination: String
        /// nil: a route on the link (no next hop).
        public var gateway: String?
        public var metric: UInt32?
        public init(_ destination: String, gateway: String? = nil, metric: UInt32? = nil) {
            self.destination = destination; self.gateway = gateway; self.metric = metric
        }
    }
    /// `aa:bb:cc:dd:ee:ff`.
    public var mac: String
    public var mtu: Int
    public var addresses: [Address]
    public var routes: [Route]
    public init(mac: String, mtu: Int, addresses: [Address] = [], routes: [Route] = []) {
        self.mac = mac; self.mtu = mtu; self.addresses = addresses; self.routes = routes
    }

    public static let maxAddresses = 64, maxRoutes = 256

    /// An IP address: 4 or 16 bytes.
    public struct IP: Equatable, Hashable, Sendable, CustomStringConvertible {
        public var bytes: [UInt8]
        public var isV6: Bool { bytes.count == 16 }
        public init?(bytes: [UInt8]) { guard bytes.count == 4 || bytes.count == 16 else { return nil }; self.bytes = bytes }

        /// Parses one address (no prefix, zone or surrounding space); nil for anything else.
        public init?(_ text: String) {
            let utf8 = Array(text.utf8)
            guard !utf8.isEmpty, utf8.count <= 45, !utf8.contains(0) else { return nil }
            var buf = [UInt8](repeating: 0, count: 16)
            let family = utf8.contains(UInt8(ascii: ":")) ? AF_INET6 : AF_INET
            guard inet_pton(family, text, &buf) == 1 else { return nil }
            bytes = Array(buf.prefix(family == AF_INET6 ? 16 : 4))
        }

        public var description: String {
            var out = [CChar](repeating: 0, count: 64)
            _ = inet_ntop(isV6 ? AF_INET6 : AF_INET, bytes, &out, socklen_t(out.count))
            return String(cString: out)
        }
        var isUnspecified: Bool { bytes.allSatisfy { $0 == 0 } }
        var isMulticast: Bool { isV6 ? bytes[0] == 0xFF : bytes[0] >= 224 && bytes[0] < 240 }
        var isLoopback: Bool { isV6 ? bytes == [UInt8](repeating: 0, count: 15) + [1] : bytes[0] == 127 }
        /// The address with every bit past `prefix` cleared.
        public func masked(_ prefix: Int) -> IP {
            var b = bytes
            for i in b.indices { let keep = max(0, min(8, prefix - 8 * i)); b[i] &= keep == 8 ? 0xFF : ~(0xFF >> UInt8(keep)) }
            return IP(bytes: b)!
        }
    }

    /// What the agent applies, every field checked.
    public struct Valid: Equatable, Sendable {
        public struct Route: Equatable, Sendable {
            public var destination: IP, prefixLength: Int, gateway: IP?, metric: UInt32?
        }
        public var mac: [UInt8]
        public var mtu: UInt32
        public var addresses: [(ip: IP, prefixLength: Int)]
        /// On-link routes first, then routes through a gateway, default routes last: a gateway
        /// reached only through an on-link route (Calico's 169.254.1.1) is reachable when its
        /// route is added.
        public var routes: [Route]
        public static func == (a: Valid, b: Valid) -> Bool {
            a.mac == b.mac && a.mtu == b.mtu && a.routes == b.routes
                && a.addresses.map { "\($0.ip)/\($0.prefixLength)" } == b.addresses.map { "\($0.ip)/\($0.prefixLength)" }
        }
    }

    /// Checks everything; the error names the field (`network.routes[3].gateway`).
    public func validated() throws(AgentError) -> Valid {
        func bad(_ field: String, _ why: String) -> AgentError { AgentError(.config, "network.\(field): \(why)") }
        guard let macBytes = Self.parseMAC(mac) else { throw bad("mac", "\"\(mac.prefix(64))\" is not a MAC address (aa:bb:cc:dd:ee:ff)") }
        guard macBytes[0] & 1 == 0, macBytes != [0, 0, 0, 0, 0, 0] else { throw bad("mac", "\(mac) is not a unicast address") }
        guard (68...65535).contains(mtu) else { throw bad("mtu", "\(mtu) is outside 68...65535") }
        guard addresses.count <= Self.maxAddresses else { throw bad("addresses", "\(addresses.count) addresses, at most \(Self.maxAddresses)") }
        guard routes.count <= Self.maxRoutes else { throw bad("routes", "\(routes.count) routes, at most \(Self.maxRoutes)") }
        var v = Valid(mac: macBytes, mtu: UInt32(mtu), addresses: [], routes: [])
        for (i, a) in addresses.enumerated() {
            guard let ip = IP(a.address) else { throw bad("addresses[\(i)].address", "\"\(a.address.prefix(64))\" is not an IPv4 or IPv6 address") }
            guard !ip.isUnspecified, !ip.isMulticast, !ip.isLoopback else { throw bad("addresses[\(i)].address", "\(ip) cannot be an interface's address") }
            guard (1...(ip.isV6 ? 128 : 32)).contains(a.prefixLength) else {
                throw bad("addresses[\(i)].prefixLength", "\(a.prefixLength) is outside 1...\(ip.isV6 ? 128 : 32)")
            }
            if ip.isV6 && mtu < 1280 { throw bad("addresses[\(i)].address", "IPv6 needs an MTU of at least 1280, the interface has \(mtu)") }
            v.addresses.append((ip, a.prefixLength))
        }
        for (i, r) in routes.enumerated() {
            let parts = r.destination.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 2, let dst = IP(String(parts[0])), let len = Int(parts[1]), parts[1].allSatisfy(\.isNumber),
                  (0...(dst.isV6 ? 128 : 32)).contains(len) else {
                throw bad("routes[\(i)].destination", "\"\(r.destination.prefix(64))\" is not ADDRESS/PREFIX")
            }
            guard dst.masked(len) == dst else { throw bad("routes[\(i)].destination", "\(r.destination) has bits set past its prefix") }
            guard !dst.isMulticast else { throw bad("routes[\(i)].destination", "\(r.destination) is a multicast range") }
            var gw: IP?
            if let g = r.gateway {
                guard let ip = IP(g) else { throw bad("routes[\(i)].gateway", "\"\(g.prefix(64))\" is not an IPv4 or IPv6 address") }
                guard ip.isV6 == dst.isV6 else { throw bad("routes[\(i)].gateway", "\(ip) is not of the destination's family") }
                guard !ip.isUnspecified, !ip.isMulticast else { throw bad("routes[\(i)].gateway", "\(ip) cannot be a next hop") }
                gw = ip
            }
            v.routes.append(.init(destination: dst, prefixLength: len, gateway: gw, metric: r.metric))
        }
        func rank(_ r: Valid.Route) -> Int { r.gateway == nil ? 0 : r.prefixLength > 0 ? 1 : 2 }
        v.routes = v.routes.enumerated().sorted { (rank($0.element), $0.offset) < (rank($1.element), $1.offset) }.map(\.element)
        return v
    }

    /// Parses `aa:bb:cc:dd:ee:ff` (two hex digits each).
    public static func parseMAC(_ s: String) -> [UInt8]? {
        let parts = s.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 6 else { return nil }
        let bytes = parts.compactMap { $0.count == 2 && $0.allSatisfy(\.isHexDigit) ? UInt8($0, radix: 16) : nil }
        return bytes.count == 6 ? bytes : nil
    }

    public static func formatMAC(_ b: [UInt8]) -> String {
        b.map { let h = String($0, radix: 16); return h.count == 1 ? "0" + h : h }.joined(separator: ":")
    }
}
