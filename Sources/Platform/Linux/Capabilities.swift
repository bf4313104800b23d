import CBrigShim
import Glibc

/// Capability sets as bitmasks (bit N = capability N), applied in runc's order.
public struct CapabilitySets: Codable, Equatable, Sendable {
    public var bounding: UInt64
    public var effective: UInt64
    public var permitted: UInt64
    public var inheritable: UInt64
    public var ambient: UInt64
    public init(bounding: UInt64, effective: UInt64, permitted: UInt64, inheritable: UInt64, ambient: UInt64) {
        self.bounding = bounding; self.effective = effective; self.permitted = permitted
        self.inheritable = inheritable; self.ambient = ambient
    }

    /// Drops bounding-set capabilities not in `bounding`. Needs CAP_SETPCAP; run before setuid.
    public func dropBounding() throws(SystemError) {
        let last = Int(brig_cap_last_cap())
        for cap in 0...last where bounding & (1 << UInt64(cap)) == 0 {
            try sys("drop capability \(cap) from the bounding set") { brig_capbset_drop(Int32(cap)) }
        }
    }

    /// Sets effective/permitted/inheritable, then raises ambient. Run after setuid (with keepcaps).
    /// An ambient capability the kernel refuses to raise (not in both the permitted and the
    /// inheritable set — `runc spec`'s default lists ambient capabilities without an inheritable
    /// set) is left out, as runc does; `unraisableAmbient` tells the parent which ones up front.
    public func apply() throws(SystemError) {
        let last = UInt64(brig_cap_last_cap())
        let mask: UInt64 = last >= 63 ? ~0 : (UInt64(1) << (last + 1)) - 1
        try sys("capset") { brig_capset(effective & mask, permitted & mask, inheritable & mask) }
        for cap in 0...Int(last) where ambient & (1 << UInt64(cap)) != 0 {
            if brig_cap_ambient_raise(Int32(cap)) != 0, errno != EPERM, errno != EINVAL {
                throw SystemError.last("raise ambient capability \(cap)")
            }
        }
    }

    /// Ambient capabilities the kernel will not raise: those missing from permitted or inheritable.
    public var unraisableAmbient: UInt64 { ambient & ~(permitted & inheritable) }
}
