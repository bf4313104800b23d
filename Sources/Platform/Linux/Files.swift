import CBrigShim
import Glibc

/// Small file helpers over raw fds. All fds are opened O_CLOEXEC.
public enum Files {
    /// `p` made absolute against the current directory (pid files, console sockets from the CLI).
    public static func absolute(_ p: String) -> String {
        if p.hasPrefix("/") { return p }
        var buf = [CChar](repeating: 0, count: 4096)
        return String(cString: getcwd(&buf, buf.count)) + "/" + p
    }

    public static func open(_ path: String, _ flags: Int32, mode: mode_t = 0o644) throws(SystemError) -> Int32 {
        try sys("open \(path)") { Glibc.open(path, flags | O_CLOEXEC, mode) }
    }

    public static func read(fd: Int32) throws(SystemError) -> [UInt8] {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = try sys("read") { buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) } }
            if n == 0 { return out }
            out.append(contentsOf: buf[0..<n])
        }
    }

    public static func read(_ path: String) throws(SystemError) -> [UInt8] {
        let fd = try open(path, O_RDONLY)
        defer { Glibc.close(fd) }
        do { return try read(fd: fd) } catch { throw SystemError(errno: error.errno, "read \(path)") }
    }

    public static func readString(_ path: String) throws(SystemError) -> String {
        String(decoding: try read(path), as: UTF8.self)
    }

    public static func writeAll(fd: Int32, _ bytes: [UInt8], _ what: @autoclosure () -> String = "write") throws(SystemError) {
        var off = 0
        while off < bytes.count {
            let n = try sys(what()) { bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + off, bytes.count - off) } }
            off += n
        }
    }

    /// Writes a whole file (no temp file: for /proc, /sys and cgroupfs control files).
    public static func write(_ path: String, _ text: String, flags: Int32 = O_WRONLY | O_TRUNC) throws(SystemError) {
        let fd = try open(path, flags)
        defer { Glibc.close(fd) }
        try writeAll(fd: fd, Array(text.utf8), "write \(text.debugDescription) to \(path)")
    }

    /// Writes atomically: a temp file in the same directory, fsync'd (unless `sync` is false:
    /// still all-or-nothing for a killed process, not across a power loss), then renamed over `path`.
    public static func writeAtomically(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644, sync: Bool = true) throws(SystemError) {
        let tmp = path + ".tmp-\(getpid())"
        let fd = try open(tmp, O_WRONLY | O_CREAT | O_TRUNC, mode: mode)
        do {
            try writeAll(fd: fd, bytes, "write \(tmp)")
            if sync { try sys("fsync \(tmp)") { fsync(fd) } }
        } catch {
            Glibc.close(fd); unlink(tmp); throw error
        }
        Glibc.close(fd)
        do { try sys("rename \(tmp) to \(path)") { rename(tmp, path) } } catch { unlink(tmp); throw error }
    }

    /// A pipe with both ends O_CLOEXEC: (read, write).
    public enum LineEnd: Sendable { case newline, eof, limit }

    /// Reads byte by byte up to a `\n` (not returned, nothing past it consumed), EOF (or a read
    /// error), or `max` bytes, and says which ended the line.
    public static func readLine(fd: Int32, max: Int) -> (text: String, end: LineEnd) {
        var bytes: [UInt8] = []
        var b: UInt8 = 0
        while bytes.count < max {
            let n = Glibc.read(fd, &b, 1)
            if n < 0 && errno == EINTR { continue }
            if n != 1 { return (String(decoding: bytes, as: UTF8.self), .eof) }
            if b == UInt8(ascii: "\n") { return (String(decoding: bytes, as: UTF8.self), .newline) }
            bytes.append(b)
        }
        return (String(decoding: bytes, as: UTF8.self), .limit)
    }

    public static func pipe() throws(SystemError) -> (Int32, Int32) {
        var fds: [Int32] = [-1, -1]
        try sys("pipe") { brig_pipe_cloexec(&fds) }
        return (fds[0], fds[1])
    }

    public static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// mkdir -p; existing directories are fine.
    public static func mkdirAll(_ path: String, mode: mode_t = 0o755) throws(SystemError) {
        if isDirectory(path) { return }
        var prefix = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            prefix += "/" + part
            if mkdir(prefix, mode) != 0 && errno != EEXIST { throw SystemError.last("mkdir \(prefix)") }
        }
    }

    /// rm -rf without following symlinks out of the tree.
    public static func removeAll(_ path: String) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            for name in (try? list(path)) ?? [] { removeAll(path + "/" + name) }
            rmdir(path)
        } else {
            unlink(path)
        }
    }

    public static func list(_ path: String) throws(SystemError) -> [String] {
        guard let dir = opendir(path) else { throw SystemError.last("opendir \(path)") }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}
