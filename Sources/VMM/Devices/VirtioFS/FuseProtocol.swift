import Glibc

/// The FUSE wire format (include/uapi/linux/fuse.h, protocol 7.31) as virtio-fs carries it: a
/// request is a 40-byte `fuse_in_header` and the opcode's arguments in the device-readable
/// buffers; the reply a 16-byte `fuse_out_header` and its payload in the device-writable ones.
/// Everything is little-endian and read with bounds checks: a short or garbled frame decodes to
/// nil, never to a read past its end.
public enum Fuse {
    public static let inHeaderSize = 40, outHeaderSize = 16
    public static let major: UInt32 = 7, minor: UInt32 = 31
    public static let rootID: UInt64 = 1

    public enum Op: UInt32 {
        case lookup = 1, forget = 2, getattr = 3, setattr = 4, readlink = 5, symlink = 6, mknod = 8
        case mkdir = 9, unlink = 10, rmdir = 11, rename = 12, link = 13, open = 14, read = 15, write = 16
        case statfs = 17, release = 18, fsync = 20, setxattr = 21, getxattr = 22, listxattr = 23
        case removexattr = 24, flush = 25, initialize = 26, opendir = 27, readdir = 28, releasedir = 29
        case fsyncdir = 30, getlk = 31, setlk = 32, setlkw = 33, access = 34, create = 35, interrupt = 36
        case bmap = 37, destroy = 38, ioctl = 39, poll = 40, batchForget = 42, fallocate = 43
        case readdirplus = 44, rename2 = 45, lseek = 46, copyFileRange = 47, syncfs = 50
    }

    // FUSE_INIT flags brig's server asks for (ANDed with the guest's).
    public static let asyncRead: UInt32 = 1 << 0, bigWrites: UInt32 = 1 << 5, autoInvalData: UInt32 = 1 << 12
    public static let doReaddirplus: UInt32 = 1 << 13, maxPagesFlag: UInt32 = 1 << 22
    // SETATTR `valid` bits.
    public static let fattrMode: UInt32 = 1, fattrUID: UInt32 = 2, fattrGID: UInt32 = 4, fattrSize: UInt32 = 8
    public static let fattrAtime: UInt32 = 16, fattrMtime: UInt32 = 32, fattrFH: UInt32 = 64
    public static let fattrAtimeNow: UInt32 = 128, fattrMtimeNow: UInt32 = 256

    /// Sizes of the fixed parts replies are built from.
    public static let attrSize = 88, entryOutSize = 40 + attrSize, attrOutSize = 16 + attrSize, direntSize = 24
}

/// The 40-byte request header.
public struct FuseInHeader: Equatable, Sendable {
    public var length: UInt32, opcode: UInt32, unique: UInt64, nodeID: UInt64, uid: UInt32, gid: UInt32, pid: UInt32

    public init(length: UInt32, opcode: UInt32, unique: UInt64, nodeID: UInt64, uid: UInt32 = 0, gid: UInt32 = 0, pid: UInt32 = 0) {
        self.length = length; self.opcode = opcode; self.unique = unique; self.nodeID = nodeID
        self.uid = uid; self.gid = gid; self.pid = pid
    }

    public init?(_ bytes: ArraySlice<UInt8>) {
        var r = FuseReader(bytes)
        guard let len = r.u32(), let op = r.u32(), let unique = r.u64(), let node = r.u64(),
              let uid = r.u32(), let gid = r.u32(), let pid = r.u32(), r.u32() != nil else { return nil }
        self.init(length: len, opcode: op, unique: unique, nodeID: node, uid: uid, gid: gid, pid: pid)
    }

    public var bytes: [UInt8] {
        var w = FuseWriter()
        w.u32(length); w.u32(opcode); w.u64(unique); w.u64(nodeID); w.u32(uid); w.u32(gid); w.u32(pid); w.u32(0)
        return w.bytes
    }
}

/// Bounds-checked little-endian reads from a request body.
public struct FuseReader {
    private let bytes: ArraySlice<UInt8>
    public private(set) var position: Int

    public init(_ bytes: ArraySlice<UInt8>) { self.bytes = bytes; self.position = bytes.startIndex }

    public var remaining: ArraySlice<UInt8> { bytes[position...] }

    private mutating func integer<T: FixedWidthInteger>(_: T.Type) -> T? {
        let n = MemoryLayout<T>.size
        guard bytes.endIndex - position >= n else { return nil }
        var v: T = 0
        for i in 0..<n { v |= T(bytes[position + i]) << (8 * i) }
        position += n
        return v
    }

    public mutating func u16() -> UInt16? { integer(UInt16.self) }
    public mutating func u32() -> UInt32? { integer(UInt32.self) }
    public mutating func u64() -> UInt64? { integer(UInt64.self) }

    public mutating func skip(_ n: Int) -> Bool {
        guard n >= 0, bytes.endIndex - position >= n else { return false }
        position += n
        return true
    }

    /// A NUL-terminated string (the NUL must be inside the frame), without its NUL.
    public mutating func cString() -> [UInt8]? {
        guard let nul = bytes[position...].firstIndex(of: 0) else { return nil }
        let s = Array(bytes[position..<nul])
        position = nul + 1
        return s
    }
}

/// Little-endian appends for replies.
public struct FuseWriter {
    public var bytes: [UInt8] = []
    public init() {}
    public mutating func integer<T: FixedWidthInteger>(_ v: T) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }
    public mutating func u16(_ v: UInt16) { integer(v) }
    public mutating func u32(_ v: UInt32) { integer(v) }
    public mutating func u64(_ v: UInt64) { integer(v) }
    public mutating func zeros(_ n: Int) { bytes.append(contentsOf: repeatElement(0, count: n)) }

    /// `fuse_attr` from a host stat (88 bytes).
    public mutating func attr(_ s: stat, ino: UInt64? = nil) {
        u64(ino ?? UInt64(s.st_ino)); u64(UInt64(s.st_size)); u64(UInt64(s.st_blocks))
        u64(UInt64(bitPattern: Int64(s.st_atim.tv_sec))); u64(UInt64(bitPattern: Int64(s.st_mtim.tv_sec)))
        u64(UInt64(bitPattern: Int64(s.st_ctim.tv_sec)))
        u32(UInt32(s.st_atim.tv_nsec)); u32(UInt32(s.st_mtim.tv_nsec)); u32(UInt32(s.st_ctim.tv_nsec))
        u32(s.st_mode); u32(UInt32(truncatingIfNeeded: s.st_nlink)); u32(s.st_uid); u32(s.st_gid)
        u32(UInt32(truncatingIfNeeded: s.st_rdev)); u32(UInt32(truncatingIfNeeded: s.st_blksize)); u32(0)
    }

    /// `fuse_entry_out` (128 bytes): node id, generation 0, entry/attr validity in seconds.
    public mutating func entry(nodeID: UInt64, _ s: stat, valid: UInt64) {
        u64(nodeID); u64(0); u64(valid); u64(valid); u32(0); u32(0)
        attr(s)
    }

    /// `fuse_dirent`: ino, next offset, name length, type, name padded to 8 bytes.
    public mutating func dirent(ino: UInt64, offset: UInt64, type: UInt32, name: [UInt8]) {
        u64(ino); u64(offset); u32(UInt32(name.count)); u32(type)
        bytes.append(contentsOf: name)
        zeros(Fuse.direntPadding(name.count))
    }
}

extension Fuse {
    static func direntPadding(_ nameLength: Int) -> Int { (8 - nameLength % 8) % 8 }
    static func direntLength(_ nameLength: Int) -> Int { direntSize + nameLength + direntPadding(nameLength) }

    /// A reply frame: the out header (length, -errno, unique) and the payload.
    public static func reply(unique: UInt64, error: Int32 = 0, _ payload: [UInt8] = []) -> [UInt8] {
        var w = FuseWriter()
        w.u32(UInt32(outHeaderSize + payload.count)); w.integer(-error); w.u64(unique)
        w.bytes.append(contentsOf: payload)
        return w.bytes
    }
}
