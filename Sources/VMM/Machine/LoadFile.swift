import BrigLinux
import Glibc

/// A kernel or initrd for the time of a load: a regular file is mapped read-only and private,
/// so its bytes are copied once, from the page cache into guest memory (reading it into an array
/// first zero-filled and copied it twice more, and held its size as RSS); anything else (a pipe,
/// /dev/fd/N) is read. A mapped file truncated during the load would fault the VMM (SIGBUS):
/// the guest files are installed by rename, never rewritten in place (scripts/install-guest.sh).
final class LoadFile {
    /// The file's bytes, valid while this lives (keep it alive across their use).
    let bytes: UnsafeRawBufferPointer
    /// Whether `bytes` is the file's mapping (a regular, non-empty file) rather than a copy.
    let isMapped: Bool

    init(_ path: String) throws(VMError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .file(.last("cannot read \(path)")) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .file(.last("cannot read \(path)")) }
        if st.st_mode & S_IFMT == S_IFREG, st.st_size > 0,
           let p = mmap(nil, Int(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED {
            bytes = UnsafeRawBufferPointer(start: p, count: Int(st.st_size))
            isMapped = true
        } else {
            let read = try readFile(path)
            let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: read.count, alignment: 1)
            copy.copyBytes(from: read)
            bytes = UnsafeRawBufferPointer(copy)
            isMapped = false
        }
    }

    deinit {
        if isMapped, let b = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: b), bytes.count) }
        if !isMapped { bytes.deallocate() }
    }
}

/// A file's whole contents, read to its end (a pipe's too: no size known in advance).
func readFile(_ path: String) throws(VMError) -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw .file(.last("cannot read \(path)")) }
    defer { close(fd) }
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
        if n < 0, errno == EINTR { continue }
        guard n >= 0 else { throw .file(.last("cannot read \(path)")) }
        if n == 0 { return out }
        out += chunk[..<n]
    }
}
