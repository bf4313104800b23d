import BrigJSON
import BrigLinux
import CBrigShim
import BrigOCI
import Glibc
import Synchronization

/// `<root>/<id>/` directories: state.json written atomically, a per-container flock, and the
/// start socket whose presence means "created, not started".
public struct StateStore: Sendable {
    public let root: String
    public init(root: String) { self.root = root }

    public static let startSocketName = "start.sock"

    public func directory(_ id: String) -> String { root + "/" + id }
    public func startSocket(_ id: String) -> String { directory(id) + "/" + StateStore.startSocketName }

    /// runc's rule for ids: letters, digits, and `_ + - .`, not `.` or `..`.
    public static func validate(id: String) throws(RuntimeError) {
        let ok = !id.isEmpty && id != "." && id != ".." && id.utf8.count <= 1024 && id.utf8.allSatisfy {
            ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5a) || ($0 >= 0x61 && $0 <= 0x7a) ||
                $0 == 0x5f || $0 == 0x2b || $0 == 0x2d || $0 == 0x2e
        }
        if !ok { throw RuntimeError(.usage, "invalid container id \"\(id)\": use letters, digits, _ + - .") }
    }

    /// Fails when `id` is not a valid id or a container of that id exists (`reserve` checks
    /// again, race-free).
    public func checkAvailable(_ id: String) throws(RuntimeError) {
        try StateStore.validate(id: id)
        if Files.exists(directory(id)) { throw RuntimeError(.exists, "container with id \(id) already exists") }
    }

    /// Creates the container's directory (fails if the id exists) and returns it locked. The
    /// directory is made and locked under a private name, then renamed into place (never over
    /// an existing one), so no other brig ever sees it unlocked: a `delete` racing this create
    /// waits for it instead of removing a directory that is about to be used. With `record`, the
    /// directory appears with its state.json already in it (written under the private name, so
    /// a plain write: one file less than a save after the rename).
    public func reserve(_ id: String, record: ContainerRecord? = nil) throws(RuntimeError) -> ContainerLock {
        try checkAvailable(id)
        do { try Files.mkdirAll(root, mode: 0o711) } catch { throw RuntimeError.wrap(error, "create state root") }
        let dir = directory(id)
        let staging = stagingPrefix(id) + "\(getpid())"
        Files.removeAll(staging)  // a killed brig's, with this pid
        if mkdir(staging, 0o711) != 0 { throw RuntimeError.wrap(SystemError.last("create \(dir)")) }
        let lock: ContainerLock
        do { lock = try ContainerLock(staging) } catch { rmdir(staging); throw RuntimeError.wrap(error) }
        if let record {
            do {
                let fd = try Files.open(staging + "/state.json", O_WRONLY | O_CREAT | O_EXCL, mode: 0o600)
                defer { close(fd) }
                try Files.writeAll(fd: fd, JSONEncoding.write(record), "write \(dir)/state.json")
            } catch {
                lock.unlock(); Files.removeAll(staging)
                throw RuntimeError.wrap(error, "save state of \(id)")
            }
        }
        CrashPoint.reached("create.staged")
        if brig_rename_noreplace(staging, dir) != 0 {
            let e = errno
            var renamed = false
            if e == EINVAL || e == ENOSYS {
                // A file system without RENAME_NOREPLACE: plain rename, only if the name is free.
                renamed = !Files.exists(dir) && rename(staging, dir) == 0
            }
            if !renamed {
                lock.unlock(); Files.removeAll(staging)
                if e == EEXIST || e == ENOTEMPTY || Files.exists(dir) { throw RuntimeError(.exists, "container with id \(id) already exists") }
                throw RuntimeError.wrap(SystemError(errno: e, "create \(dir)"))
            }
        }
        lock.moved(to: dir)
        return lock
    }

    /// `<root>/.new-<id>.<pid>`: where `reserve` prepares a directory.
    func stagingPrefix(_ id: String) -> String { root + "/.new-" + id + "." }

    /// Staging directories for `id` left by a brig killed inside `reserve` (not locked by a
    /// live one); `delete --force` of an id that does not exist removes them.
    @discardableResult public func sweepStaging(_ id: String) -> Int {
        let prefix = ".new-" + id + "."
        var removed = 0
        for name in (try? Files.list(root)) ?? [] where name.hasPrefix(prefix) {
            // Only a dead brig's: a live one may be between its mkdir and its flock.
            guard let pid = Int32(name.dropFirst(prefix.count)), kill(pid, 0) != 0, errno == ESRCH else { continue }
            let path = root + "/" + name
            let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if fd < 0 { continue }
            if flock(fd, LOCK_EX | LOCK_NB) == 0 { Files.removeAll(path); removed += 1 }
            close(fd)
        }
        return removed
    }

    /// Locks an existing container's directory (with or without state.json: a create that was
    /// killed leaves a directory that `delete` must still be able to lock and remove).
    public func lock(_ id: String) throws(RuntimeError) -> ContainerLock {
        try StateStore.validate(id: id)
        let dir = directory(id)
        do { return try ContainerLock(dir) } catch {
            if error.errno == ENOENT || error.errno == ENOTDIR { throw RuntimeError(.notFound, "container \(id) does not exist") }
            throw RuntimeError.wrap(error)
        }
    }

    /// True when a process other than this one holds the container's lock (a create or delete
    /// in progress). A create that was killed has released it.
    public func isLockedElsewhere(_ id: String) -> Bool {
        let dir = directory(id)
        if ContainerLock.heldHere(dir) { return false }
        let fd = Glibc.open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { return false }
        defer { close(fd) }
        return flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK
    }

    /// Writes state.json atomically. `durable: false` skips the fsync: for the records `create`
    /// writes before each acquisition, which only need to survive the brig process (what they
    /// name — cgroups, processes — does not survive a reboot either); ~25 us on tmpfs.
    public func save(_ record: ContainerRecord, durable: Bool = true) throws(RuntimeError) {
        do {
            try Files.writeAtomically(directory(record.id) + "/state.json", JSONEncoding.write(record), mode: 0o600, sync: durable)
        } catch { throw RuntimeError.wrap(error, "save state of \(record.id)") }
    }

    /// What a state directory holds.
    public enum Contents {
        case record(ContainerRecord)
        /// state.json is unreadable or not a record; the message says which file and why.
        case corrupt(String)
    }

    /// The container's record: state.json, or a placeholder when the directory exists without
    /// one (a create killed before it recorded anything). notFound without the directory.
    public func read(_ id: String) throws(RuntimeError) -> Contents {
        let path = directory(id) + "/state.json"
        let bytes: [UInt8]
        do { bytes = try Files.read(path) } catch {
            if error.errno == ENOENT {
                if Files.isDirectory(directory(id)) { return .record(.placeholder(id: id)) }
                throw RuntimeError(.notFound, "container \(id) does not exist")
            }
            throw RuntimeError.wrap(error)
        }
        do { return .record(try JSONDecoding.read(ContainerRecord.self, from: bytes)) } catch {
            return .corrupt("state file \(path) is corrupt (\(StateStore.describe(error)))")
        }
    }

    public func load(_ id: String) throws(RuntimeError) -> ContainerRecord {
        switch try read(id) {
        case .record(let r): return r
        case .corrupt(let why):
            throw RuntimeError(.internalError, "container \(id): \(why); `brig delete --force \(id)` removes it and what it holds")
        }
    }

    /// A decoding error in one line: what was wrong and where.
    static func describe(_ error: any Error) -> String {
        guard let e = error as? DecodingError else { return "\(error)" }
        func path(_ c: DecodingError.Context) -> String {
            let p = c.codingPath.map { $0.intValue.map { "[\($0)]" } ?? "." + $0.stringValue }.joined()
            return p.isEmpty ? c.debugDescription : "\(p.hasPrefix(".") ? String(p.dropFirst()) : p): \(c.debugDescription)"
        }
        switch e {
        case .dataCorrupted(let c): return "not JSON: " + path(c)
        case .keyNotFound(let k, let c): return "missing \(k.stringValue) at " + path(c)
        case .typeMismatch(_, let c), .valueNotFound(_, let c): return path(c)
        @unknown default: return "\(e)"
        }
    }

    /// Every container directory, with or without a readable state.json (dot entries, such as
    /// an older brig's `.exe`, and names that are not ids are not containers).
    public func ids() -> [String] {
        ((try? Files.list(root)) ?? []).filter { name in
            !name.hasPrefix(".") && (try? StateStore.validate(id: name)) != nil && Files.isDirectory(directory(name))
        }.sorted()
    }

    /// Removes the directory; state.json goes last, so a removal that is interrupted still
    /// leaves a directory that lists and deletes like the container it was.
    /// Returns why the directory is still there, if it is (a read-only or broken state root).
    @discardableResult public func remove(_ id: String) -> SystemError? {
        let dir = directory(id)
        for name in (try? Files.list(dir)) ?? [] where name != "state.json" { Files.removeAll(dir + "/" + name) }
        Files.removeAll(dir)
        var st = stat()
        guard lstat(dir, &st) == 0 else { return nil }
        if unlink(dir + "/state.json") != 0 && errno != ENOENT { return SystemError.last("remove \(dir)/state.json") }
        return rmdir(dir) == 0 ? nil : SystemError.last("remove \(dir)")
    }
}

/// An exclusive flock on a container directory; released on `unlock()` or process exit. A
/// directory removed while we waited for its lock is reported as ENOENT (its container is gone).
public final class ContainerLock {
    private var fd: Int32
    private var dir: String
    /// Directories this process holds locked, with a count (flock is per open file, so a
    /// probe from this process would see its own lock as someone else's).
    private static let held = Mutex<[String: Int]>([:])

    public init(_ dir: String) throws(SystemError) {
        self.dir = dir
        fd = try Files.open(dir, O_RDONLY | O_DIRECTORY)
        if flock(fd, LOCK_EX) != 0 { let e = SystemError.last("lock \(dir)"); close(fd); throw e }
        var st = stat()
        if fstat(fd, &st) != 0 || st.st_nlink == 0 { close(fd); throw SystemError(errno: ENOENT, "lock \(dir)") }
        ContainerLock.held.withLock { $0[dir, default: 0] += 1 }
    }

    /// The locked directory was renamed (by `reserve`).
    func moved(to newDir: String) {
        ContainerLock.held.withLock {
            $0[dir, default: 1] -= 1
            if $0[dir] == 0 { $0[dir] = nil }
            $0[newDir, default: 0] += 1
        }
        dir = newDir
    }

    static func heldHere(_ dir: String) -> Bool { held.withLock { ($0[dir] ?? 0) > 0 } }

    public func unlock() {
        guard fd >= 0 else { return }
        close(fd); fd = -1
        ContainerLock.held.withLock {
            $0[dir, default: 1] -= 1
            if $0[dir] == 0 { $0[dir] = nil }
        }
    }
    deinit { unlock() }
}


extension StateStore {
    /// After a failed or interrupted create (or a delete of what such a create left): the
    /// backend kills the processes and removes the cgroups state.json records, then the
    /// directory goes. Each step is idempotent, so this is safe on anything already released.
    public func abandon(_ id: String, backend: (ContainerRecord) -> any Backend) throws(RuntimeError) {
        if case .record(let r)? = try? read(id) { try backend(r).destroy(r, store: self) }
        if let e = remove(id) { throw RuntimeError.wrap(e) }
    }
}
