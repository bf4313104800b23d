#if canImport(Glibc)
import Glibc
#endif
import BrigCore
import BrigLinux
import BrigOCI

/// Mount points of a read-only root, created in the rootfs directory before its image is built.
///
/// runc creates a missing mount destination in the rootfs before it makes the root read-only; a
/// microvm guest gets the rootfs as a disk image attached read-only, so the agent cannot create
/// it there and the mount fails. So, as runc does, brig creates those destinations in the bundle's
/// rootfs directory on the host (an empty directory, or an empty file for a bind of a file) and
/// then builds the image. Each is created by `SecurePath.create`: an fd walk in which every
/// symlink, absolute or with `..`, resolves inside the rootfs, so a hostile rootfs cannot make
/// brig create anything outside it. A destination below an earlier mount of the spec (`/dev/pts`
/// under the `/dev` tmpfs) is left to the guest, which creates it in that mount.
public enum RootfsMountPoints {
    /// What a mount point is created as.
    public struct Target: Equatable {
        public var path: String
        public var kind: SecurePath.Kind
        public init(path: String, kind: SecurePath.Kind) { self.path = path; self.kind = kind }
    }

    /// The destinations of `spec`'s mounts (and its cwd), in order, that lie in the rootfs itself:
    /// not below an earlier mount's destination. A bind of a regular file is a file, anything else
    /// a directory. Sources are as given (relative to `bundle`); one that cannot be read counts as
    /// a directory (GuestShares.plan refuses it naming the field).
    public static func targets(_ spec: Spec, bundle: String) -> [Target] {
        var out: [Target] = []
        var mounted: [String] = []
        for m in spec.mounts ?? [] {
            let dest = clean(m.destination)
            defer { mounted.append(dest) }
            guard dest != "/", !mounted.contains(where: { below(dest, $0) }) else { continue }
            var kind = SecurePath.Kind.directory
            if GuestShares.isBind(m), let raw = m.source, !raw.isEmpty {
                var st = stat()
                if stat(MicroVMPlan.absolute(raw, bundle: bundle), &st) == 0, (st.st_mode & S_IFMT) == S_IFREG { kind = .file }
            }
            out.append(Target(path: dest, kind: kind))
        }
        if let cwd = (spec.process?.cwd).map(clean), cwd != "/", !mounted.contains(where: { below(cwd, $0) }) {
            out.append(Target(path: cwd, kind: .directory))
        }
        return out
    }

    /// Creates each of `targets` that is missing, inside `rootfs`. Fails naming the destination
    /// (one whose path ends at a non-directory, a symlink loop); what was created before that stays,
    /// as runc's mount points do.
    public static func create(_ targets: [Target], in rootfs: String) throws(RuntimeError) {
        guard !targets.isEmpty else { return }
        let root: Int32
        do { root = try SecurePath.openRoot(rootfs) } catch { throw RuntimeError(.config, "root.path: \(rootfs): \(error)") }
        defer { close(root) }
        for t in targets {
            do { close(try SecurePath.create(root, t.path, kind: t.kind)) } catch {
                throw RuntimeError(.config, "creating the mount point \(t.path) in the read-only rootfs \(rootfs): \(error)")
            }
        }
    }

    /// `path` with empty and `.` components dropped and `..` applied lexically, absolute.
    static func clean(_ path: String) -> String {
        var parts: [Substring] = []
        for c in path.split(separator: "/") where c != "." {
            if c == ".." { if !parts.isEmpty { parts.removeLast() } } else { parts.append(c) }
        }
        return "/" + parts.joined(separator: "/")
    }

    /// True if `path` is strictly below `dir` (both clean).
    static func below(_ path: String, _ dir: String) -> Bool {
        dir == "/" ? path != "/" : path.hasPrefix(dir + "/")
    }
}
