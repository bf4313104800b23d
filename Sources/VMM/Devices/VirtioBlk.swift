import BrigLinux
#if canImport(Glibc)
import Glibc
#endif
import BrigGuestMemory

public enum VirtioBlkError: Error, Equatable, CustomStringConvertible {
    case open(SystemError)
    case size(SystemError)
    public var description: String {
        switch self {
        case let .open(e), let .size(e): return e.description
        }
    }
}

/// virtio-blk (device type 2) on a host file: IN, OUT, FLUSH, GET_ID; optional read-only.
public final class VirtioBlk: VirtioDevice, @unchecked Sendable {
    public static let sectorSize: UInt64 = 512
    public static let featureRO: UInt64 = 1 << 5, featureFlush: UInt64 = 1 << 9
    public static let typeIn: UInt32 = 0, typeOut: UInt32 = 1, typeFlush: UInt32 = 4, typeGetID: UInt32 = 8
    public static let statusOK: UInt8 = 0, statusIOErr: UInt8 = 1, statusUnsupported: UInt8 = 2
    public static let idLength = 20

    public let deviceType: UInt32 = 2
    public let queueMaxSizes: [UInt16] = [256]
    public let readOnly: Bool
    public let capacityBytes: UInt64
    public let id: [UInt8]
    private let fd: Int32

    public var features: UInt64 { Self.featureFlush | (readOnly ? Self.featureRO : 0) }

    /// Opens `path` (O_RDONLY when read-only). The id defaults to the file name, truncated to 20 bytes.
    public init(path: String, readOnly: Bool, id: String? = nil) throws(VirtioBlkError) {
        let fd = open(path, (readOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC)
        guard fd >= 0 else { throw .open(.last("cannot open disk \(path)")) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { let e = SystemError.last("cannot size disk \(path)"); close(fd); throw .size(e) }
        self.fd = fd
        self.readOnly = readOnly
        self.capacityBytes = UInt64(st.st_size) / Self.sectorSize * Self.sectorSize
        // The file name by bytes (Character-wise String code is more text faulted in at boot).
        let bytes = Array(path.utf8)
        let base = bytes.lastIndex(of: UInt8(ascii: "/")).map { bytes[($0 + 1)...] } ?? bytes[...]
        let name = id.map { Array($0.utf8) } ?? (base.isEmpty ? Array("brig-disk".utf8) : Array(base))
        self.id = Array(name.prefix(Self.idLength))
    }

    deinit { close(fd) }

    /// Config space: capacity in 512-byte sectors at offset 0 (little-endian u64).
    public func readConfig(offset: UInt64, into data: UnsafeMutableRawBufferPointer) {
        var cfg = [UInt8](repeating: 0, count: 8)
        withUnsafeBytes(of: (capacityBytes / Self.sectorSize).littleEndian) { cfg = Array($0) }
        for i in data.indices {
            let o = Int(offset) + i
            data[i] = o < cfg.count ? cfg[o] : 0
        }
    }

    public func process(queue index: Int, _ queue: inout Virtqueue, memory: GuestMemory) throws(VirtqueueError) -> Bool {
        try queue.drain(memory) { handle($0, memory) }
    }

    /// Executes one request; returns the number of bytes written to the guest.
    func handle(_ chain: DescriptorChain, _ mem: GuestMemory) -> UInt32 {
        let b = chain.buffers
        // Layout: header (readable, >= 16 bytes) ... data ... status (writable, last).
        guard b.count >= 2, !b[0].writable, b[0].length >= 16, let st = b.last, st.writable, st.length >= 1,
              let type: UInt32 = try? mem.load(at: b[0].address),
              let sector: UInt64 = try? mem.load(at: b[0].address + 8) else { return 0 }
        let data = b[1..<(b.count - 1)]
        var written: UInt32 = 0
        let status: UInt8
        switch type {
        case Self.typeIn:
            status = transfer(data, sector: sector, mem: mem, toGuest: true)
            if status == Self.statusOK { written = data.reduce(0) { $0 + $1.length } }
        case Self.typeOut:
            status = readOnly ? Self.statusIOErr : transfer(data, sector: sector, mem: mem, toGuest: false)
        case Self.typeFlush:
            status = readOnly || fsync(fd) == 0 ? Self.statusOK : Self.statusIOErr
        case Self.typeGetID:
            if let d = data.first, d.writable, let dst = try? mem.slice(d.address, length: UInt64(min(Int(d.length), Self.idLength))) {
                for i in dst.indices { dst[i] = i < id.count ? id[i] : 0 }
                written = UInt32(dst.count)
                status = Self.statusOK
            } else { status = Self.statusIOErr }
        default: status = Self.statusUnsupported
        }
        guard (try? mem.store(status, at: st.address)) != nil else { return written }
        return written + 1
    }

    private func transfer(_ bufs: ArraySlice<DescriptorBuffer>, sector: UInt64, mem: GuestMemory, toGuest: Bool) -> UInt8 {
        let start = sector.multipliedReportingOverflow(by: Self.sectorSize)
        guard !start.overflow else { return Self.statusIOErr }
        var off = start.partialValue
        for d in bufs {
            guard d.writable == toGuest else { return Self.statusIOErr }
            let len = UInt64(d.length)
            guard off <= capacityBytes, len <= capacityBytes - off,
                  let p = try? mem.hostPointer(d.address, length: len) else { return Self.statusIOErr }
            var done: UInt64 = 0
            while done < len {
                let n = toGuest ? pread(fd, p + Int(done), Int(len - done), off_t(off + done))
                                : pwrite(fd, p + Int(done), Int(len - done), off_t(off + done))
                if n < 0, errno == EINTR { continue }
                guard n > 0 else { return Self.statusIOErr }
                done += UInt64(n)
            }
            off += len
        }
        return Self.statusOK
    }
}
