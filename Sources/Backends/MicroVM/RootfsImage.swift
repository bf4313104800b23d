import BrigCore
import BrigLinux
import Glibc

/// Turns a rootfs directory into an ext4 image the guest mounts from its virtio-blk disk.
/// Images are cached under `<root>/.images/`, keyed by the directory and a signature of its tree
/// (entries, sizes, newest mtime/ctime), so a second container from the same rootfs copies a
/// ready image (sparse copy, ~20 ms for busybox) instead of running mke2fs (~80 ms, more for
/// big trees). Each container gets its own copy because the guest writes to it.
public struct RootfsImage {
    public var cacheDir: String
    /// mke2fs, from e2fsprogs.
    public var mke2fs = "/sbin/mke2fs"
    public init(cacheDir: String) { self.cacheDir = cacheDir }

    /// Number of entries, total bytes, newest mtime/ctime: cheap (one lstat per entry) and
    /// changes whenever a file is added, removed, resized or touched.
    public struct Signature: Equatable, Sendable {
        public var entries = 0
        public var bytes: UInt64 = 0
        public var newest: Int = 0
        public var key: String { "\(entries)-\(bytes)-\(newest)" }
    }

    public static func signature(of dir: String) throws(RuntimeError) -> Signature {
        var sig = Signature()
        var st = stat()
        guard lstat(dir, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
            throw RuntimeError(.config, "root.path: \(dir) does not exist or is not a directory")
        }
        var stack = [dir]
        while let d = stack.popLast() {
            let names: [String]
            do { names = try Files.list(d) } catch { throw RuntimeError(.system, "reading rootfs \(d): \(error)") }
            for n in names {
                let p = d + "/" + n
                guard lstat(p, &st) == 0 else { continue }
                sig.entries += 1
                sig.bytes &+= UInt64(max(0, st.st_size))
                sig.newest = max(sig.newest, st.st_mtim.tv_sec, st.st_ctim.tv_sec)
                if (st.st_mode & S_IFMT) == S_IFDIR { stack.append(p) }
            }
        }
        return sig
    }

    /// Image size: the tree, doubled for the container's writes and ext4 metadata, at least 64 MiB.
    static func imageSize(_ sig: Signature) -> UInt64 {
        let mib: UInt64 = 1 << 20
        let want = max(64 * mib, sig.bytes * 2 + UInt64(sig.entries) * 4096 + 32 * mib)
        return (want + mib - 1) / mib * mib
    }

    /// FNV-1a, for a short file name from the rootfs path.
    static func hash(_ s: String) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return String(h, radix: 16)
    }

    /// Writes the container's image of `rootfs` to `dest` (from the cache when it is current).
    public func materialize(rootfs: String, to dest: String) throws(RuntimeError) {
        let sig = try Self.signature(of: rootfs)
        do { try Files.mkdirAll(cacheDir, mode: 0o700) } catch { throw RuntimeError(.system, "\(error)") }
        let cached = "\(cacheDir)/\(Self.hash(rootfs))-\(sig.key).ext4"
        Self.sweepPartial(cacheDir)
        if !Files.exists(cached) {
            let tmp = cached + ".tmp.\(getpid())"
            defer { unlink(tmp) }
            try run([mke2fs, "-q", "-F", "-t", "ext4", "-E", "root_owner=0:0", "-L", "brig-rootfs", "-d", rootfs, tmp,
                     "\(Self.imageSize(sig) >> 10)k"], what: "building the rootfs image from \(rootfs)")
            chmod(tmp, 0o600)
            guard rename(tmp, cached) == 0 else { throw RuntimeError(.system, "rename \(tmp): \(String(cString: strerror(errno)))") }
            // Older images of the same rootfs are stale now.
            let prefix = Self.hash(rootfs) + "-"
            for n in (try? Files.list(cacheDir)) ?? [] where n.hasPrefix(prefix) && cacheDir + "/" + n != cached {
                unlink(cacheDir + "/" + n)
            }
        }
        try Self.sparseCopy(cached, to: dest)
    }

    /// Removes half-built images (`NAME.tmp.PID`) whose brig is gone: one killed in mke2fs.
    static func sweepPartial(_ cacheDir: String) {
        for n in (try? Files.list(cacheDir)) ?? [] {
            let parts = n.split(separator: ".")
            guard parts.count >= 3, parts[parts.count - 2] == "tmp", let pid = Int32(parts[parts.count - 1]), pid > 0 else { continue }
            if Glibc.kill(pid, 0) != 0 && errno == ESRCH { unlink(cacheDir + "/" + n) }
        }
    }

    /// Copies a file, keeping holes: only the data extents (SEEK_DATA/SEEK_HOLE) are copied.
    static func sparseCopy(_ src: String, to dest: String) throws(RuntimeError) {
        let i = open(src, O_RDONLY | O_CLOEXEC)
        guard i >= 0 else { throw RuntimeError(.system, "open \(src): \(String(cString: strerror(errno)))") }
        defer { close(i) }
        let o = open(dest, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard o >= 0 else { throw RuntimeError(.system, "create \(dest): \(String(cString: strerror(errno)))") }
        defer { close(o) }
        var st = stat()
        fstat(i, &st)
        let size = st.st_size
        let seekData: Int32 = 3, seekHole: Int32 = 4    // <unistd.h> with _GNU_SOURCE
        var buf = [UInt8](repeating: 0, count: 1 << 20)
        var pos: off_t = 0
        while pos < size {
            let data = lseek(i, pos, seekData)
            if data < 0 { break }               // only a hole remains
            var hole = lseek(i, data, seekHole)
            if hole < 0 { hole = size }
            var off = data
            while off < hole {
                let want = min(buf.count, Int(hole - off))
                let n = buf.withUnsafeMutableBytes { pread(i, $0.baseAddress, want, off) }
                guard n > 0 else { throw RuntimeError(.system, "reading \(src): \(String(cString: strerror(n < 0 ? errno : EIO)))") }
                let w = buf.withUnsafeBytes { pwrite(o, $0.baseAddress, n, off) }
                guard w == n else { throw RuntimeError(.system, "writing \(dest): \(String(cString: strerror(errno)))") }
                off += off_t(n)
            }
            pos = hole
        }
        guard ftruncate(o, size) == 0 else { throw RuntimeError(.system, "truncate \(dest): \(String(cString: strerror(errno)))") }
    }

    func run(_ argv: [String], what: String) throws(RuntimeError) {
        do {
            let o = Spawn.Options(path: argv[0], args: argv, env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"])
            let (exit, out) = try Spawn.output(o, capture: [1, 2])
            guard exit == .exited(0) else {
                throw RuntimeError(.system, "\(what): \(argv[0]) failed (\(exit)): \(String(decoding: out.prefix(500), as: UTF8.self))")
            }
        } catch let e as RuntimeError { throw e } catch { throw RuntimeError(.system, "\(what): \(error)") }
    }
}
