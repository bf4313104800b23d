import Testing
import Glibc
import BrigGuestMemory
@testable import BrigDevices

/// READ and WRITE served on guest memory directly (VirtioFS.serveDirect), and what it leaves to
/// the copying path.
@Suite struct VirtioFSDirectTests {
    func le64(_ b: [UInt8], _ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(b[at + $1]) << (8 * $1) } }
    func errno(_ r: [UInt8]) -> Int32 { -Int32(bitPattern: UInt32(r[4]) | UInt32(r[5]) << 8 | UInt32(r[6]) << 16 | UInt32(r[7]) << 24) }

    /// FUSE_INIT, lookups of share 0 and `name`, an open with `flags`: returns the file handle.
    func open(_ d: FSDriver, _ name: String, flags: UInt32) throws -> UInt64 {
        var w = FuseWriter(); w.u32(7); w.u32(31); w.u32(0); w.u32(0xFFFF_FFFF); w.zeros(48)
        _ = try d.request(fuseFrame(.initialize, unique: 1, node: 0, w.bytes))
        let (_, share) = try d.request(fuseFrame(.lookup, unique: 2, node: 1, Array("0".utf8) + [0]))
        let (_, file) = try d.request(fuseFrame(.lookup, unique: 3, node: le64(share, 16), Array(name.utf8) + [0]))
        var o = FuseWriter(); o.u32(flags); o.u32(0)
        let (_, opened) = try d.request(fuseFrame(.open, unique: 4, node: le64(file, 16), o.bytes))
        #expect(errno(opened) == 0)
        return le64(opened, 16)
    }

    func io(_ op: Fuse.Op, fh: UInt64, offset: UInt64, size: Int, data: [UInt8] = []) -> [UInt8] {
        var w = FuseWriter(); w.u64(fh); w.u64(offset); w.u32(UInt32(size)); w.u32(0); w.u64(0); w.u32(0); w.u32(0)
        return fuseFrame(op, unique: 9, node: 2, w.bytes + data)
    }

    /// A chain over guest memory: `frame` at 0x40000 in pieces of `split`, a 16-byte header
    /// buffer at 0x60000 and `room - 16` bytes at 0x70000.
    func chain(_ d: FSDriver, _ frame: [UInt8], split: Int, room: Int) throws -> DescriptorChain {
        try d.mem.write(frame, at: 0x40000)
        var bufs: [DescriptorBuffer] = []
        var off = 0
        while off < frame.count {
            let n = min(split, frame.count - off)
            bufs.append(DescriptorBuffer(address: 0x40000 + UInt64(off), length: UInt32(n), writable: false))
            off += n
        }
        bufs += [DescriptorBuffer(address: 0x60000, length: 16, writable: true),
                 DescriptorBuffer(address: 0x70000, length: UInt32(room - 16), writable: true)]
        return DescriptorChain(head: 0, buffers: bufs)
    }

    @Test func writeAndReadGoStraightBetweenTheFileAndGuestPages() throws {
        let t = TempTree()
        t.file("f", "")
        let d = try FSDriver([FSShare(source: t.path, readOnly: false)])
        let fh = try open(d, "f", flags: UInt32(O_RDWR))
        let data = (0..<3000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let w = try chain(d, io(.write, fh: fh, offset: 0, size: data.count, data: data), split: 1000, room: 64)
        #expect(d.fs.serveDirect(w, d.mem) == 24)
        #expect(try d.mem.read(0x60000, count: 8) == [24, 0, 0, 0, 0, 0, 0, 0])
        #expect(try d.mem.read(0x70000, count: 4) == [0xB8, 0x0B, 0, 0], "write_out.size 3000")
        var back = [UInt8](repeating: 0, count: 4000)
        let fd = Glibc.open(t.path + "/f", O_RDONLY)
        let got = Glibc.read(fd, &back, 4000)
        close(fd)
        #expect(got == 3000 && Array(back[0..<3000]) == data, "the host file holds what the guest wrote")
        let r = try chain(d, io(.read, fh: fh, offset: 100, size: 2000), split: 4096, room: 16 + 4096)
        let n = d.fs.serveDirect(r, d.mem)
        #expect(n == UInt32(16 + 2000), "\(String(describing: n))")
        #expect(try d.mem.read(0x70000, count: 2000) == Array(data[100..<2100]))
        // Cut to the reply's room; past the end of the file, no data.
        let cut = try chain(d, io(.read, fh: fh, offset: 0, size: 2000), split: 4096, room: 16 + 5)
        #expect(try d.fs.serveDirect(cut, d.mem) == 21 && d.mem.read(0x70000, count: 5) == Array(data[0..<5]))
        let eof = try chain(d, io(.read, fh: fh, offset: 5000, size: 100), split: 4096, room: 4096)
        #expect(d.fs.serveDirect(eof, d.mem) == 16)
        // Through the queue, the same.
        let (len, reply) = try d.request(io(.read, fh: fh, offset: 2990, size: 100), split: 13)
        #expect(len == 26 && Array(reply[16...]) == Array(data[2990...]))
    }

    @Test func errorsAndWhatIsLeftToTheCopyingPath() throws {
        let t = TempTree()
        t.file("f", "read only")
        let d = try FSDriver([FSShare(source: t.path, readOnly: true)])
        let fh = try open(d, "f", flags: UInt32(O_RDONLY))
        // A WRITE on a read-only handle is answered here, and the file is untouched.
        let w = try chain(d, io(.write, fh: fh, offset: 0, size: 4, data: Array("XXXX".utf8)), split: 100, room: 64)
        #expect(try d.fs.serveDirect(w, d.mem) == 16 && errno(d.mem.read(0x60000, count: 16)) == EBADF)
        #expect(t.read("f") == "read only")
        let bad = try chain(d, io(.read, fh: 999, offset: 0, size: 4), split: 100, room: 64)
        #expect(try d.fs.serveDirect(bad, d.mem) == 16 && errno(d.mem.read(0x60000, count: 16)) == EBADF)
        // Not READ/WRITE, a header length shorter than the arguments, a WRITE whose size is more
        // than the frame holds, a reply area too small: the copying path's business.
        #expect(d.fs.serveDirect(try chain(d, fuseFrame(.getattr, unique: 5, node: 1, [UInt8](repeating: 0, count: 40)), split: 100, room: 4096), d.mem) == nil)
        var short = io(.read, fh: fh, offset: 0, size: 4)
        short[0] = 60
        #expect(d.fs.serveDirect(try chain(d, short, split: 100, room: 4096), d.mem) == nil)
        #expect(d.fs.serveDirect(try chain(d, io(.write, fh: fh, offset: 0, size: 100, data: [1, 2, 3]), split: 100, room: 64), d.mem) == nil)
        #expect(d.fs.serveDirect(try chain(d, io(.write, fh: fh, offset: 0, size: 1, data: [1]), split: 100, room: 20), d.mem) == nil)
        // A piece outside guest memory.
        var outside = try chain(d, io(.read, fh: fh, offset: 0, size: 4), split: 100, room: 64)
        outside.buffers[outside.buffers.count - 1].address = 0x200000
        #expect(d.fs.serveDirect(outside, d.mem) == nil)
    }
}
