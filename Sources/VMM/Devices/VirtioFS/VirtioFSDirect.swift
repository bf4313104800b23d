import BrigGuestMemory
import Glibc

/// READ and WRITE without the bounce buffer: the file is read straight into the reply's guest
/// pages (preadv) and written straight from the request's (pwritev); only the headers (80 bytes
/// in, 16 or 24 out) are copied. Every piece is a descriptor buffer the virtqueue already
/// checked to lie in guest RAM, looked up again as one region each (`hostPointer`), and the size
/// is bounded as on the copying path (max_write, the reply's room). Anything not a well-formed
/// READ or WRITE after FUSE_INIT (short, inconsistent, oversized, more than 1,024 pieces, a
/// reply area too small) returns nil and takes the copying path, which answers it as before.
extension VirtioFS {
    static let ioArgsSize = 40   // fuse_read_in and fuse_write_in

    func serveDirect(_ chain: DescriptorChain, _ mem: GuestMemory) -> UInt32? {
        let head = Fuse.inHeaderSize + Self.ioArgsSize
        let readable = chain.readable, writable = chain.writable
        let total = readable.reduce(0) { $0 + Int($1.length) }
        let room = writable.reduce(0) { $0 + Int($1.length) }
        guard session.initialized, total >= head, total <= maxFrame,
              let frame = gather(readable, limit: head, mem), frame.count == head,
              let h = FuseInHeader(frame[0..<Fuse.inHeaderSize]),
              h.opcode == Fuse.Op.read.rawValue || h.opcode == Fuse.Op.write.rawValue,
              Int(h.length) >= head, Int(h.length) <= total else { return nil }
        var r = FuseReader(frame[Fuse.inHeaderSize...])
        guard let fh = r.u64(), let offset = r.u64(), let size = r.u32().map(Int.init) else { return nil }
        if h.opcode == Fuse.Op.read.rawValue {
            let want = min(size, session.server.limits.maxIO, room - Fuse.outHeaderSize)
            guard want >= 0, let iov = Self.iovecs(writable, skip: Fuse.outHeaderSize, count: want, mem) else { return nil }
            let n: Int
            do throws(FsError) { n = try session.server.read(fh, offset: offset, into: iov) } catch {
                return reply(Fuse.reply(unique: h.unique, error: error.errno), writable, mem, error: true)
            }
            var w = FuseWriter()
            w.u32(UInt32(Fuse.outHeaderSize + n)); w.u32(0); w.u64(h.unique)
            return reply(w.bytes, writable, mem, error: false) == 0 ? 0 : UInt32(Fuse.outHeaderSize + n)
        }
        let outSize = Fuse.outHeaderSize + 8
        guard head + size <= Int(h.length), room >= outSize,
              let iov = Self.iovecs(readable, skip: head, count: size, mem) else { return nil }
        let n: Int
        do throws(FsError) { n = try session.server.write(fh, offset: offset, from: iov) } catch {
            return reply(Fuse.reply(unique: h.unique, error: error.errno), writable, mem, error: true)
        }
        var w = FuseWriter()
        w.u32(UInt32(n)); w.u32(0)
        return reply(Fuse.reply(unique: h.unique, w.bytes), writable, mem, error: false)
    }

    private func reply(_ bytes: [UInt8], _ writable: [DescriptorBuffer], _ mem: GuestMemory, error: Bool) -> UInt32 {
        session.countDirect(error: error)
        let n = scatter(bytes, writable, mem)
        return n == UInt32(bytes.count) ? n : 0
    }

    /// `count` bytes of `bufs` after the first `skip`, as host iovecs into guest memory; nil when
    /// the buffers are shorter, a piece is not guest RAM, or it takes more than 1,024 pieces.
    static func iovecs(_ bufs: [DescriptorBuffer], skip: Int, count: Int, _ mem: GuestMemory) -> [iovec]? {
        var out: [iovec] = []
        var skip = skip, left = count
        for b in bufs where left > 0 {
            let len = Int(b.length)
            if skip >= len { skip -= len; continue }
            let n = min(len - skip, left)
            guard let p = try? mem.hostPointer(b.address + UInt64(skip), length: UInt64(n)) else { return nil }
            out.append(iovec(iov_base: p, iov_len: n))
            left -= n; skip = 0
        }
        return left == 0 && out.count <= 1024 ? out : nil
    }
}
