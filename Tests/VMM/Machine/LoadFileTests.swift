import BrigLinux
import Glibc
import Testing
@testable import BrigVMM

/// Kernel and initrd files: a regular file is mapped (its bytes copied once, into guest memory),
/// anything else is read; errors name the path.
@Suite struct LoadFileTests {
    func temp(_ bytes: [UInt8]) throws -> String {
        var template = Array("/tmp/brig-loadfile-XXXXXX".utf8CString)
        let fd = mkstemp(&template)
        #expect(fd >= 0)
        try Files.writeAll(fd: fd, bytes)
        close(fd)
        return String(cString: template)
    }

    func bytes(_ f: LoadFile) -> [UInt8] { withExtendedLifetime(f) { Array(f.bytes) } }

    @Test func aRegularFileIsMappedWithItsBytes() throws {
        let content = (0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let path = try temp(content)
        defer { unlink(path) }
        let f = try LoadFile(path)
        #expect(f.isMapped)
        #expect(bytes(f) == content)
    }

    @Test func anEmptyFileGivesNoBytes() throws {
        let path = try temp([])
        defer { unlink(path) }
        let f = try LoadFile(path)
        #expect(!f.isMapped)
        #expect(bytes(f).isEmpty)
    }

    @Test func aPipeIsReadInstead() throws {
        let (r, w) = try Files.pipe()
        try Files.writeAll(fd: w, [1, 2, 3, 4])
        close(w)
        defer { close(r) }
        let f = try LoadFile("/proc/self/fd/\(r)")
        #expect(!f.isMapped)
        #expect(bytes(f) == [1, 2, 3, 4])
    }

    @Test func aMissingFileIsAnErrorNamingIt() {
        #expect { _ = try LoadFile("/nonexistent/brig-kernel") } throws: { "\($0)".contains("/nonexistent/brig-kernel") }
    }
}
