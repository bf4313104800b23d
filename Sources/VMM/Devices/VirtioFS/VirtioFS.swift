import BrigGuestMemory
import BrigLinux
import Glibc

/// virtio-fs (device type 26, virtio 1.x section 5.11): FUSE requests over virtqueues, served
/// by a `FuseSession` in the VMM process. Queue 0 is hiprio (FORGET, INTERRUPT), queue 1 the one
/// request queue. Config space: the mount tag (36 bytes, NUL-padded) and num_request_queues = 1.
/// No DAX window, no notification queue.
///
/// A request chain is device-readable buffers (the frame) then device-writable ones (the reply).
/// READ and WRITE payloads go straight between the file and guest memory (VirtioFSDirect.swift);
/// any other frame is gathered into one bounded buffer (at most max_write plus headers: a bigger chain
/// gets EINVAL from its header alone), the reply scattered back; every buffer was checked by the
/// virtqueue to lie in guest RAM. Requests run on the vCPU thread that notified, under the
/// transport's lock (so one at a time, like virtio-blk's).
public final class VirtioFS: VirtioDevice, @unchecked Sendable {
    public static let hiprioQueue = 0, requestQueue = 1
    public static let tagLength = 36

    public let deviceType: UInt32 = 26
    /// The request queue holds a 1 MiB READ's page list (one descriptor per page).
    public let queueMaxSizes: [UInt16] = [128, 1024]
    public let features: UInt64 = 0
    public let tag: [UInt8]
    public let session: FuseSession
    let maxFrame: Int
    /// READ/WRITE payloads straight to and from guest memory; `BRIG_VIRTIOFS_BOUNCE=1` in the
    /// VMM's environment copies them through the buffer instead (benchmarks/virtiofs.sh compares).
    public var direct = getenv("BRIG_VIRTIOFS_BOUNCE").map { String(cString: $0) != "1" } ?? true

    public init(tag: String, server: FileServer) throws(SystemError) {
        let bytes = Array(tag.utf8)
        guard !bytes.isEmpty, bytes.count <= Self.tagLength, !bytes.contains(0) else {
            throw SystemError(errno: EINVAL, "virtio-fs tag \"\(tag)\" must be 1...\(Self.tagLength) bytes")
        }
        self.tag = bytes
        self.session = FuseSession(server: server)
        self.maxFrame = server.limits.maxIO + 4096
    }

    public func readConfig(offset: UInt64, into data: UnsafeMutableRawBufferPointer) {
        var cfg = tag + [UInt8](repeating: 0, count: Self.tagLength - tag.count)
        withUnsafeBytes(of: UInt32(1).littleEndian) { cfg.append(contentsOf: $0) }
        for i in data.indices {
            let (o, overflow) = offset.addingReportingOverflow(UInt64(i))
            data[i] = !overflow && o < UInt64(cfg.count) ? cfg[Int(o)] : 0
        }
    }

    public func process(queue index: Int, _ queue: inout Virtqueue, memory: GuestMemory) throws(VirtqueueError) -> Bool {
        guard index == Self.hiprioQueue || index == Self.requestQueue else { return false }
        return try queue.drain(memory) { serve($0, memory) }
    }

    /// Runs one request chain; returns the bytes written into its writable buffers.
    func serve(_ chain: DescriptorChain, _ mem: GuestMemory) -> UInt32 {
        if direct, let n = serveDirect(chain, mem) { return n }
        let readable = chain.readable, writable = chain.writable
        let total = readable.reduce(0) { $0 + Int($1.length) }
        let room = writable.reduce(0) { $0 + Int($1.length) }
        guard let frame = gather(readable, limit: min(total, maxFrame), mem) else { return 0 }
        let reply: [UInt8]?
        if total > maxFrame {
            // Oversized: answer from the header alone.
            reply = FuseInHeader(frame[...]).map { Fuse.reply(unique: $0.unique, error: EINVAL) }
        } else {
            reply = session.handle(frame[...], maxReply: room)
        }
        guard let reply, reply.count <= room else { return 0 }
        return scatter(reply, writable, mem)
    }

    func gather(_ bufs: [DescriptorBuffer], limit: Int, _ mem: GuestMemory) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(limit)
        for b in bufs where out.count < limit {
            let n = min(Int(b.length), limit - out.count)
            guard let bytes = try? mem.read(b.address, count: n) else { return nil }
            out.append(contentsOf: bytes)
        }
        return out
    }

    func scatter(_ bytes: [UInt8], _ bufs: [DescriptorBuffer], _ mem: GuestMemory) -> UInt32 {
        var done = 0
        for b in bufs where done < bytes.count {
            let n = min(Int(b.length), bytes.count - done)
            guard (try? mem.write(bytes[done..<(done + n)], at: b.address)) != nil else { break }
            done += n
        }
        return UInt32(done)
    }

    /// Lets the VMM hold a node per file the guest caches (before the jail): RLIMIT_NOFILE raised
    /// to what the nodes and handles need (both limits, up to fs.nr_open, where the VMM may raise
    /// the hard one), else the soft limit to the hard one. Returns the node limit that leaves room
    /// for everything else.
    public static func raiseFileLimit(_ limits: FileServerLimits) -> FileServerLimits {
        var rl = rlimit()
        var out = limits
        let resource = Int32(RLIMIT_NOFILE.rawValue)
        guard getrlimit(resource, &rl) == 0 else { return out }
        let want = rlim_t(limits.maxNodes + limits.maxHandles + 1024)
        if rl.rlim_max < want {
            var nrOpen = rlim_t(1 << 20)
            let fd = Glibc.open("/proc/sys/fs/nr_open", O_RDONLY | O_CLOEXEC)
            if fd >= 0 {
                var b = [UInt8](repeating: 0, count: 32)
                let n = Glibc.read(fd, &b, 31)
                close(fd)
                if n > 0, let v = rlim_t(String(decoding: b[0..<n], as: UTF8.self).filter(\.isNumber)) { nrOpen = v }
            }
            var raised = rlimit(rlim_cur: min(want, nrOpen), rlim_max: min(want, nrOpen))
            if raised.rlim_max > rl.rlim_max, setrlimit(resource, &raised) == 0 { rl = raised }
        }
        if rl.rlim_cur < rl.rlim_max {
            rl.rlim_cur = rl.rlim_max
            _ = setrlimit(resource, &rl)
            _ = getrlimit(resource, &rl)
        }
        let soft = Int(clamping: rl.rlim_cur)
        let usable: Int = soft - limits.maxHandles - 256
        out.maxNodes = max(256, min(limits.maxNodes, usable))
        return out
    }
}
