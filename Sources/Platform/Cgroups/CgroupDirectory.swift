import BrigLinux
import Glibc

/// Records every write a controller performs (test and debugging aid). Not thread-safe:
/// attach one recorder to one single-threaded sequence of operations.
public final class WriteLog: @unchecked Sendable {
    /// `(file name, value)` in the order written.
    public private(set) var writes: [(file: String, value: String)] = []
    public init() {}
    func append(_ file: String, _ value: String) { writes.append((file, value)) }
    /// The values written to one file, in order.
    public func values(_ file: String) -> [String] { writes.filter { $0.file == file }.map(\.value) }
}

/// One cgroup directory (a leaf on one hierarchy). Controllers are stateless functions
/// that take a `CgroupDirectory` and write control files in it; every file operation in the
/// library goes through here so that errors name the file and the value.
public struct CgroupDirectory: Sendable {
    /// Absolute path of the directory.
    public let path: String
    /// Optional recorder of writes.
    public let log: WriteLog?

    public init(_ path: String, log: WriteLog? = nil) { self.path = path; self.log = log }

    /// Absolute path of a control file.
    public func file(_ name: String) -> String { path + "/" + name }

    /// Whether a control file (or subdirectory) exists.
    public func exists(_ name: String) -> Bool { access(file(name), F_OK) == 0 }

    /// Writes `value` to control file `name` in one write(2) (no O_CREAT: a missing file means
    /// the controller is not available and is reported as such).
    public func write(_ name: String, _ value: String, field: String? = nil) throws {
        let p = file(name)
        do {
            let fd = try sys("open \(p)") { open(p, O_WRONLY | O_TRUNC | O_CLOEXEC) }
            defer { close(fd) }
            var bytes = Array(value.utf8)
            if bytes.isEmpty { bytes = [0x0a] }
            let n = try bytes.withUnsafeBytes { buf in
                try sys("write \(p)") { Glibc.write(fd, buf.baseAddress, buf.count) }
            }
            if n != bytes.count { throw SystemError(errno: EIO, "short write to \(p)") }
        } catch let e as SystemError {
            throw CgroupError.writeFailed(file: p, value: value, field: field, e)
        }
        log?.append(name, value)
    }

    /// Reads a control file, without the trailing newline.
    public func read(_ name: String) throws -> String {
        let p = file(name)
        do {
            let fd = try sys("open \(p)") { open(p, O_RDONLY | O_CLOEXEC) }
            defer { close(fd) }
            var out: [UInt8] = []
            var buf = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = try buf.withUnsafeMutableBytes { b in try sys("read \(p)") { Glibc.read(fd, b.baseAddress, b.count) } }
                if n == 0 { break }
                out.append(contentsOf: buf[0..<n])
            }
            var s = String(decoding: out, as: UTF8.self)
            while s.last == "\n" { s.removeLast() }
            return s
        } catch let e as SystemError {
            throw CgroupError.readFailed(file: p, e)
        }
    }

    /// Reads a file holding one unsigned number; `max` reads as `UInt64.max`.
    public func readUInt(_ name: String) throws -> UInt64 {
        let s = try read(name).trimmingWhitespace
        if s == "max" { return UInt64.max }
        guard let v = UInt64(s) else { throw CgroupError.parseFailed(file: file(name), content: s) }
        return v
    }

    /// Like `readUInt` but returns nil when the file does not exist.
    public func readUIntIfPresent(_ name: String) throws -> UInt64? {
        exists(name) ? try readUInt(name) : nil
    }

    /// Reads a flat-keyed file (`key value` per line, e.g. memory.stat, cpu.stat, memory.events).
    public func readKeyValues(_ name: String) throws -> [String: UInt64] {
        let text = try read(name)
        var out: [String: UInt64] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            guard parts.count == 2, let v = UInt64(parts[1]) else {
                throw CgroupError.parseFailed(file: file(name), content: String(line))
            }
            out[String(parts[0])] = v
        }
        return out
    }

    /// Names of the entries in this directory (excluding `.` and `..`).
    public func entries() -> [String] { scan { _, _ in true } }

    /// Subdirectories (child cgroups). The type comes from the directory entry (cgroupfs fills
    /// d_type), not one lstat per file: a v1 memory cgroup has ~30 files, and delete walks every
    /// hierarchy twice.
    public func children() -> [CgroupDirectory] {
        scan { type, name in
            type == UInt8(DT_DIR) || (type == UInt8(DT_UNKNOWN) && isDirectory(file(name)))
        }.map { CgroupDirectory(file($0), log: log) }
    }

    /// Sorted names of the entries `keep` accepts (given d_type and the name), without . and ..
    private func scan(_ keep: (UInt8, String) -> Bool) -> [String] {
        guard let d = opendir(path) else { return [] }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafePointer(to: e.pointee.d_name) { p in
                p.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." && keep(e.pointee.d_type, name) { names.append(name) }
        }
        return names.sorted()
    }

    /// Whether the directory itself exists.
    public var isPresent: Bool { isDirectory(path) }
}

func isDirectory(_ path: String) -> Bool {
    var st = stat()
    return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
}

extension StringProtocol {
    var trimmingWhitespace: String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }
}

/// `mkdir -p`; returns the directories it created, outermost first. On failure the ones it
/// created are removed again. The common case, a new leaf under a parent that exists, is one
/// mkdir: the walk from `/` (an lstat per component) runs only when the parent is missing.
func makeDirectories(_ path: String) throws -> [String] {
    let components = path.split(separator: "/")
    let whole = "/" + components.joined(separator: "/")
    if mkdir(whole, 0o755) == 0 { return [whole] }
    if Glibc.errno == EEXIST { return [] }
    var created: [String] = []
    var current = ""
    for comp in components {
        current += "/" + comp
        if isDirectory(current) { continue }
        if mkdir(current, 0o755) == 0 {
            created.append(current)
        } else if Glibc.errno != EEXIST {
            let error = CgroupError.directory(path: current, .last("mkdir \(current)"))
            for dir in created.reversed() { _ = rmdir(dir) }
            throw error
        }
    }
    return created
}

/// rmdir, retrying EBUSY briefly (a cgroup whose last task is still exiting). A directory
/// that is already gone is not an error.
func removeDirectory(_ path: String, retries: Int = 10) throws {
    var delay: UInt32 = 10_000
    for attempt in 0...retries {
        if rmdir(path) == 0 { return }
        let e = Glibc.errno
        if e == ENOENT { return }
        if e != EBUSY || attempt == retries {
            throw CgroupError.directory(path: path, SystemError(errno: e, "rmdir \(path)"))
        }
        usleep(delay)
        delay = min(delay * 2, 200_000)
    }
}

/// Removes a cgroup directory and its child cgroups, deepest first. One rmdir when it has
/// none (the common case); the directory is listed only when that fails.
func removeCgroupTree(_ path: String) throws {
    if rmdir(path) == 0 || Glibc.errno == ENOENT { return }
    for child in CgroupDirectory(path).children() { try removeCgroupTree(child.path) }
    try removeDirectory(path)
}
