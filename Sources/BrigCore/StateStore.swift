import BrigLinux
import BrigOCI
import FoundationEssentials
import Glibc

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

    /// Creates the container's directory (fails if the id exists) and returns it locked.
    public func reserve(_ id: String) throws(RuntimeError) -> ContainerLock {
        try StateStore.validate(id: id)
        do { try Files.mkdirAll(root, mode: 0o711) } catch { throw RuntimeError.wrap(error, "create state root") }
        let dir = directory(id)
        if mkdir(dir, 0o711) != 0 {
            if errno == EEXIST { throw RuntimeError(.exists, "container with id \(id) already exists") }
            throw RuntimeError.wrap(SystemError.last("create \(dir)"))
        }
        do { return try ContainerLock(dir) } catch { Files.removeAll(dir); throw RuntimeError.wrap(error) }
    }

    /// Locks an existing container's directory.
    public func lock(_ id: String) throws(RuntimeError) -> ContainerLock {
        try StateStore.validate(id: id)
        let dir = directory(id)
        guard Files.exists(dir + "/state.json") else { throw RuntimeError(.notFound, "container \(id) does not exist") }
        do { return try ContainerLock(dir) } catch {
            if error.errno == ENOENT { throw RuntimeError(.notFound, "container \(id) does not exist") }
            throw RuntimeError.wrap(error)
        }
    }

    public func save(_ record: ContainerRecord) throws(RuntimeError) {
        do {
            let data = try JSONEncoder().encode(record)
            try Files.writeAtomically(directory(record.id) + "/state.json", Array(data), mode: 0o600)
        } catch { throw RuntimeError.wrap(error, "save state of \(record.id)") }
    }

    public func load(_ id: String) throws(RuntimeError) -> ContainerRecord {
        let path = directory(id) + "/state.json"
        let bytes: [UInt8]
        do { bytes = try Files.read(path) } catch {
            if error.errno == ENOENT { throw RuntimeError(.notFound, "container \(id) does not exist") }
            throw RuntimeError.wrap(error)
        }
        do { return try JSONDecoder().decode(ContainerRecord.self, from: Data(bytes)) } catch {
            throw RuntimeError(.internalError, "corrupt state file \(path): \(error)")
        }
    }

    public func ids() -> [String] {
        ((try? Files.list(root)) ?? []).filter { Files.exists(directory($0) + "/state.json") }.sorted()
    }

    public func remove(_ id: String) { Files.removeAll(directory(id)) }
}

/// An exclusive flock on a container directory; released on `unlock()` or process exit.
public final class ContainerLock {
    private var fd: Int32
    public init(_ dir: String) throws(SystemError) {
        fd = try Files.open(dir, O_RDONLY | O_DIRECTORY)
        if flock(fd, LOCK_EX) != 0 { let e = SystemError.last("lock \(dir)"); close(fd); throw e }
    }
    public func unlock() { if fd >= 0 { close(fd); fd = -1 } }
    deinit { unlock() }
}
