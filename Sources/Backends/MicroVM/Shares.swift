#if canImport(Glibc)
import Glibc
#endif
import BrigCore
import BrigOCI

/// A host path the VMM shares with the guest over virtio-fs (one bind mount's source).
public struct SharedPath: Codable, Equatable, Sendable {
    public var source: String
    public var readOnly: Bool
    /// `rbind`: mounts below the source are shared too (a plain `bind` shows what is under them).
    public var recursive: Bool
    public init(source: String, readOnly: Bool, recursive: Bool) {
        self.source = source; self.readOnly = readOnly; self.recursive = recursive
    }
}

/// Bind mounts of host paths in a microvm container (kvm transport). The VMM serves every
/// bind's source through one virtio-fs device whose root lists them as `0`, `1`, … (a directory,
/// or the bound file itself for a file bind such as `/etc/hosts`); the agent mounts it at
/// `guestDirectory` (nosuid, nodev) when the kernel command line has `brig.fs=<tag>`, and the
/// container's bind mounts take their source from there, with their own options (ro, nosuid,
/// nodev, noexec, propagation) applied by the same namespaces code as on the host. `ro` is also
/// enforced by the VMM's file server (EROFS), whatever the guest does.
public enum GuestShares {
    public static let tag = "brig"
    /// Where the agent mounts the device (GuestInit.sharedDirectory, in the guest).
    public static let guestDirectory = "/run/brig-fs"

    /// True for the mounts brig treats as binds of host paths.
    static func isBind(_ m: Mount) -> Bool {
        let opts = m.options ?? []
        return m.type == "bind" || opts.contains("bind") || opts.contains("rbind")
    }

    /// The shares, in mount order, and the spec the guest runs (each bind's source rewritten to
    /// its share under `guestDirectory`). A source must exist and be a directory or a regular
    /// file (symlinks in the host path are followed, as a bind mount follows them): device nodes,
    /// sockets and FIFOs cannot be shared with a VM.
    public static func plan(_ spec: Spec, bundle: String) throws(RuntimeError) -> (shares: [SharedPath], guest: Spec) {
        var shares: [SharedPath] = []
        var guest = spec
        for (i, m) in (spec.mounts ?? []).enumerated() where isBind(m) {
            guard let raw = m.source, !raw.isEmpty else { throw RuntimeError(.config, "mounts[\(i)].source: required for a bind mount") }
            let source = MicroVMPlan.absolute(raw, bundle: bundle)
            var st = stat()
            guard stat(source, &st) == 0 else {
                throw RuntimeError(.config, "mounts[\(i)].source: \(source): \(String(cString: strerror(errno)))")
            }
            let kind = st.st_mode & S_IFMT
            guard kind == S_IFDIR || kind == S_IFREG else {
                throw RuntimeError(.unsupported, "mounts[\(i)].source: \(source) is not a directory or a regular file; the microvm backend shares only those with the guest (virtio-fs)")
            }
            let readOnly = (m.options ?? []).last(where: { $0 == "ro" || $0 == "rw" }) == "ro"
            guest.mounts?[i].source = "\(guestDirectory)/\(shares.count)"
            shares.append(SharedPath(source: source, readOnly: readOnly, recursive: (m.options ?? []).contains("rbind")))
        }
        return (shares, guest)
    }
}
