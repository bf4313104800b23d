import Glibc

/// READ and WRITE on caller-given memory (the guest's own pages, VirtioFS.serveDirect): the same
/// checks as `read`/`write`, one preadv/pwritev per request instead of a copy through a buffer.
extension FileServer {
    /// Reads at most `limits.maxIO` bytes at `offset` into `iov`; returns the bytes read (fewer at
    /// the end of the file).
    func read(_ fh: UInt64, offset: UInt64, into iov: [iovec]) throws(FsError) -> Int {
        let h = try fileHandle(fh)
        guard offset <= UInt64(Int64.max) else { throw FsError(EINVAL) }
        return try Self.transfer(Self.truncated(iov, to: limits.maxIO), keepPartial: false) { v, n, done in
            preadv(h.fd, v, n, off_t(offset) + off_t(done))
        }
    }

    /// Writes `iov` (at most `limits.maxIO` bytes) at `offset`; returns the bytes written (fewer
    /// when the file system stopped part way, as pwrite reports it).
    func write(_ fh: UInt64, offset: UInt64, from iov: [iovec]) throws(FsError) -> Int {
        let h = try fileHandle(fh)
        guard h.writable, let n = nodes[h.node], !isReadOnly(n) else { throw FsError(h.writable ? EROFS : EBADF) }
        guard offset <= UInt64(Int64.max), iov.reduce(0, { $0 + $1.iov_len }) <= limits.maxIO else { throw FsError(EINVAL) }
        return try Self.transfer(iov, keepPartial: true) { v, n, done in
            pwritev(h.fd, v, n, off_t(offset) + off_t(done))
        }
    }

    static func truncated(_ iov: [iovec], to limit: Int) -> [iovec] {
        var out: [iovec] = [], left = limit
        for v in iov where left > 0 {
            out.append(iovec(iov_base: v.iov_base, iov_len: min(v.iov_len, left)))
            left -= out[out.count - 1].iov_len
        }
        return out
    }

    /// Runs `op(iovecs, count, bytesDoneSoFar)` until `iov` is done, EOF (0) or an error (thrown,
    /// unless `keepPartial` and something was transferred), advancing past partial transfers.
    static func transfer(_ iov: [iovec], keepPartial: Bool,
                         _ op: (UnsafePointer<iovec>, Int32, Int) -> Int) throws(FsError) -> Int {
        var v = iov
        var i = 0, done = 0
        while i < v.count {
            let n = v.withUnsafeBufferPointer { op($0.baseAddress! + i, Int32(min(v.count - i, 1024)), done) }
            if n < 0, errno == EINTR { continue }
            if n < 0 { if keepPartial && done > 0 { break }; throw FsError(errno) }
            if n == 0 { break }
            done += n
            var k = n
            while i < v.count, k >= v[i].iov_len { k -= v[i].iov_len; i += 1 }
            if k > 0 { v[i].iov_base += k; v[i].iov_len -= k }
        }
        return done
    }
}
