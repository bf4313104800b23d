#if canImport(Glibc)
import Glibc
#endif
import BrigCore
import BrigJSON
import BrigLinux
import BrigAgentProtocol
import BrigOCI
import BrigVMM
import CBrigShim

/// A microvm container's network when the bundle names a network namespace by path (as CNI
/// and netavark prepare it: one veth with an address and a default route). Inside that
/// namespace the VMM's tap is connected to the veth with tc mirroring, as Kata does: an
/// ingress qdisc on each and a matchall filter redirecting every frame to the other's egress.
/// Chosen over a bridge because it changes nothing the engine set up (the veth keeps its
/// address and routes; no new device is enslaved), needs no bridge module, and is removed by
/// deleting two ingress qdiscs. The guest's interface gets the veth's MAC (virtio config) and
/// MTU (VIRTIO_NET_F_MTU); the agent gives it the veth's MAC, MTU, every IPv4/IPv6 address and
/// route again over rtnetlink (`agentNetwork`, sent before the container is created).
/// Recorded as `network.json` in the state directory before anything is created, so `delete`
/// removes the qdiscs a killed brig left; the tap is not persistent and goes with the VMM.
public struct GuestNetwork: Codable, Equatable, Sendable {
    public var netnsPath: String
    /// The engine's interface in the namespace (the veth).
    public var interface: String
    public var tap: String
    public var mac: [UInt8]
    public var mtu: UInt16
    /// The interface's addresses (IPv4 and IPv6, not link-local) and routes (not those the
    /// guest's kernel makes itself: connected prefixes, link-local, multicast, local).
    public var addresses: [AgentNetwork.Address]?
    public var routes: [AgentNetwork.Route]?

    public static let tapName = "tap0_brig"
    public static let recordName = "network.json"

    /// What the agent configures in the guest.
    public var agentNetwork: AgentNetwork {
        AgentNetwork(mac: AgentNetwork.formatMAC(mac), mtu: Int(mtu), addresses: addresses ?? [], routes: routes ?? [])
    }

    public var netConfig: NetConfig { NetConfig(tapName: tap, netnsPath: netnsPath, mac: mac, mtu: mtu) }

    // MARK: the config

    /// The container's network from `linux.namespaces`: nil for a new network namespace (the
    /// guest has loopback only, as before); the engine's namespace when one is given by path
    /// (kvm only: the host-agent transport has no VM to connect). No network namespace at all
    /// would mean the host's network, which a VM cannot share: refused.
    public static func plan(_ spec: Spec, kvm: Bool) throws(RuntimeError) -> GuestNetwork? {
        let nss = spec.linux?.namespaces ?? []
        guard let i = nss.firstIndex(where: { $0.type == NamespaceKind.network.rawValue }) else {
            throw RuntimeError(.unsupported, "linux.namespaces: no network namespace means the host's network, which a microvm container cannot share; add {\"type\": \"network\"} (loopback only) or {\"type\": \"network\", \"path\": ...} (the engine's network)")
        }
        guard let path = nss[i].path else { return nil }
        guard kvm else { throw RuntimeError(.unsupported, "linux.namespaces[\(i)].path: joining a network namespace needs the microvm kvm transport") }
        return try discover(netnsPath: path, field: "linux.namespaces[\(i)].path")
    }

    /// The spec the guest runs: the container shares the guest's own network namespace (where
    /// eth0 is) instead of joining a host path that does not exist in the guest.
    public static func guestSpec(_ spec: Spec) -> Spec {
        var s = spec
        s.linux?.namespaces?.removeAll { $0.type == NamespaceKind.network.rawValue && $0.path != nil }
        return s
    }

    // MARK: discovery

    /// Looks at the namespace: exactly one interface besides lo (and our tap), its MAC, MTU,
    /// addresses and routes.
    public static func discover(netnsPath: String, field: String) throws(RuntimeError) -> GuestNetwork {
        do {
            return try NetworkNamespace.run(in: netnsPath) { () throws(VMError) -> GuestNetwork in
                let names = interfaceNames().filter { $0 != "lo" && $0 != tapName }
                guard names.count == 1, let name = names.first else {
                    throw .config("\(field): the network namespace \(netnsPath) has \(names.count) interfaces besides lo (\(names.joined(separator: ", "))); brig connects exactly one")
                }
                let sock = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
                guard sock >= 0 else { throw .config("socket in \(netnsPath): \(String(cString: strerror(errno)))") }
                defer { close(sock) }
                guard let hw = ifreq(sock, name, siocgifhwaddr), let mtuReq = ifreq(sock, name, siocgifmtu) else {
                    throw .config("\(field): reading \(name) in \(netnsPath): \(String(cString: strerror(errno)))")
                }
                var n = GuestNetwork(netnsPath: netnsPath, interface: name, tap: tapName, mac: Array(hw[18..<24]),
                                     mtu: UInt16(clamping: Int32(littleEndian: mtuReq[16..<20].withUnsafeBytes { $0.loadUnaligned(as: Int32.self) })))
                n.addresses = interfaceAddresses(name)
                let v4 = (try? Files.readString("/proc/thread-self/net/route")).map { ipv4Routes(table: $0, interface: name) } ?? []
                let v6 = (try? Files.readString("/proc/thread-self/net/ipv6_route")).map { ipv6Routes(table: $0, interface: name) } ?? []
                n.routes = withoutConnected(v4 + v6, addresses: n.addresses ?? [])
                do { _ = try n.agentNetwork.validated() } catch { throw .config("\(field): \(name) in \(netnsPath): \(error)") }
                // The ingress qdisc is removed whole on delete: it must be ours to remove.
                guard try tc(["qdisc", "show", "dev", name, "ingress"]).isEmpty else {
                    throw .config("\(field): \(name) in \(netnsPath) already has an ingress qdisc (another tool's); brig would replace it")
                }
                return n
            }
        } catch { throw RuntimeError(.config, "\(error)") }
    }

    static let siocgifmtu: UInt = 0x8921
    static let siocgifhwaddr: UInt = 0x8927, siocgifflags: UInt = 0x8913, siocsifflags: UInt = 0x8914, siocsifmtu: UInt = 0x8922

    /// A `struct ifreq` ioctl on `name`; the 40 bytes after it, nil on failure.
    static func ifreq(_ sock: Int32, _ name: String, _ request: UInt, set: [UInt8]? = nil) -> [UInt8]? {
        var r = [UInt8](repeating: 0, count: 40)
        for (i, b) in name.utf8.prefix(15).enumerated() { r[i] = b }
        if let set { for (i, b) in set.prefix(24).enumerated() { r[16 + i] = b } }
        return r.withUnsafeMutableBytes { brig_ioctl_ptr(sock, request, $0.baseAddress) } == 0 ? r : nil
    }

    static func interfaceNames() -> [String] {
        guard let list = if_nameindex() else { return [] }
        defer { if_freenameindex(list) }
        var out: [String] = [], p = list
        while p.pointee.if_index != 0, let n = p.pointee.if_name { out.append(String(cString: n)); p += 1 }
        return out
    }

    // MARK: wiring (in the monitor, after the VMM opened the tap and before it confines itself)

    /// Sets the tap's MTU, brings it up and mirrors the veth and the tap into each other.
    public func connect() throws(RuntimeError) {
        do {
            try NetworkNamespace.run(in: netnsPath) { () throws(VMError) in
                let sock = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
                guard sock >= 0 else { throw .config("socket in \(netnsPath): \(String(cString: strerror(errno)))") }
                defer { close(sock) }
                let mtuBytes = withUnsafeBytes(of: Int32(mtu).littleEndian) { Array($0) }
                guard Self.ifreq(sock, tap, Self.siocsifmtu, set: mtuBytes) != nil,
                      var flags = Self.ifreq(sock, tap, Self.siocgifflags) else {
                    throw .config("setting up \(tap) in \(netnsPath): \(String(cString: strerror(errno)))")
                }
                flags[16] |= 1 // IFF_UP
                guard Self.ifreq(sock, tap, Self.siocsifflags, set: Array(flags[16..<18])) != nil else {
                    throw .config("bringing \(tap) up in \(netnsPath): \(String(cString: strerror(errno)))")
                }
                for (from, to) in [(interface, tap), (tap, interface)] {
                    try Self.tc(["qdisc", "add", "dev", from, "ingress"])
                    try Self.tc(["filter", "add", "dev", from, "parent", "ffff:", "protocol", "all", "prio", "1",
                                 "u32", "match", "u8", "0", "0", "action", "mirred", "egress", "redirect", "dev", to])
                }
            }
        } catch { throw RuntimeError(.system, "connecting the VM's tap to \(interface) in \(netnsPath): \(error)") }
    }

    /// Removes what `connect` added (the ingress qdiscs take their filters with them).
    /// Idempotent; a namespace that is gone has nothing left to remove.
    public func disconnect() {
        _ = try? NetworkNamespace.run(in: netnsPath) { () throws(VMError) in
            for dev in [interface, tap] { _ = try? Self.tc(["qdisc", "del", "dev", dev, "ingress"], quiet: true) }
        }
    }

    static var tcPath: String { ["/usr/sbin/tc", "/sbin/tc", "/usr/bin/tc"].first { access($0, X_OK) == 0 } ?? "/usr/sbin/tc" }

    /// Runs tc in the calling thread's network namespace (a spawned child starts there);
    /// returns what it printed.
    @discardableResult
    static func tc(_ args: [String], quiet: Bool = false) throws(VMError) -> String {
        var p: [Int32] = [-1, -1]
        guard pipe(&p) == 0 else { throw .config("pipe: \(String(cString: strerror(errno)))") }
        defer { close(p[0]) }
        let null = open("/dev/null", O_RDWR | O_CLOEXEC)
        var o = Spawn.Options(path: tcPath, args: [tcPath] + args, env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"])
        o.fds = [(null, 0), (p[1], 1), (p[1], 2)]
        o.stdioOnly = true
        let pid: pid_t
        do { pid = try Spawn.spawn(o) } catch { close(p[1]); close(null); throw .config("\(error) (tc is iproute2's)") }
        close(p[1]); close(null)
        var err = [UInt8](repeating: 0, count: 4096), n = 0
        while n < err.count { let r = read(p[0], &err[n], err.count - n); if r <= 0 { break }; n += r }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let output = String(decoding: err[0..<n], as: UTF8.self).trimmingCharacters()
        guard status == 0 || quiet else { throw .config("tc \(args.joined(separator: " ")): \(output)") }
        return output
    }

    // MARK: state

    public static func recordPath(_ stateDir: String) -> String { stateDir + "/" + recordName }

    public func record(stateDir: String) throws(RuntimeError) {
        do { try Files.writeAtomically(Self.recordPath(stateDir), try JSONEncoding.encode(self)) }
        catch { throw RuntimeError(.system, "recording the network in \(Self.recordPath(stateDir)): \(error)") }
    }

    /// Undoes a recorded network (delete, or a failed create) and forgets it.
    public static func cleanUp(stateDir: String) {
        let path = recordPath(stateDir)
        guard let bytes = try? Files.read(path), let n = try? JSONDecoding.decode(GuestNetwork.self, from: bytes) else { return }
        n.disconnect()
        unlink(path)
    }
}

extension String {
    func trimmingCharacters() -> String {
        var s = Substring(self)
        while let c = s.last, c == "\n" || c == " " { s = s.dropLast() }
        return String(s)
    }
}
