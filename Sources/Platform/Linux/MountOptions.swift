import CBrigShim

/// A mount's option list split the way mount(2) wants it: flags to set, flags the options clear,
/// propagation changes (applied as separate mount calls), and the filesystem data string.
public struct MountOptions: Equatable, Sendable, Codable {
    public var flags: UInt = 0
    public var cleared: UInt = 0
    public var propagation: [UInt] = []
    public var data: [String] = []
    public var bind = false
    public var recursive = false
    /// runc's `tmpcopyup`: a new tmpfs starts with a copy of what the directory held.
    public var tmpcopyup = false
    /// runc's recursive options (`rro`, `rnosuid`, ...): MOUNT_ATTR_* bits set/cleared on the
    /// whole subtree with mount_setattr(AT_RECURSIVE) after mounting.
    public var recursiveSet: UInt64 = 0
    public var recursiveClear: UInt64 = 0

    static let recursiveSetting: [String: UInt64] = [
        "rro": 0x1, "rnosuid": 0x2, "rnodev": 0x4, "rnoexec": 0x8, "rnodiratime": 0x80, "rnosymfollow": 0x200000,
    ]
    static let recursiveClearing: [String: UInt64] = [
        "rrw": 0x1, "rsuid": 0x2, "rdev": 0x4, "rexec": 0x8, "rdiratime": 0x80, "rsymfollow": 0x200000,
    ]

    static let setting: [String: UInt] = [
        "ro": UInt(BRIG_MS_RDONLY), "nosuid": UInt(BRIG_MS_NOSUID), "nodev": UInt(BRIG_MS_NODEV),
        "noexec": UInt(BRIG_MS_NOEXEC), "sync": UInt(BRIG_MS_SYNCHRONOUS), "remount": UInt(BRIG_MS_REMOUNT),
        "mand": UInt(BRIG_MS_MANDLOCK), "dirsync": UInt(BRIG_MS_DIRSYNC), "noatime": UInt(BRIG_MS_NOATIME),
        "nodiratime": UInt(BRIG_MS_NODIRATIME), "relatime": UInt(BRIG_MS_RELATIME),
        "strictatime": UInt(BRIG_MS_STRICTATIME), "silent": UInt(BRIG_MS_SILENT),
        "lazytime": UInt(BRIG_MS_LAZYTIME), "iversion": UInt(BRIG_MS_I_VERSION),
        "nosymfollow": UInt(BRIG_MS_NOSYMFOLLOW),
    ]
    static let clearing: [String: UInt] = [
        "rw": UInt(BRIG_MS_RDONLY), "suid": UInt(BRIG_MS_NOSUID), "dev": UInt(BRIG_MS_NODEV),
        "exec": UInt(BRIG_MS_NOEXEC), "async": UInt(BRIG_MS_SYNCHRONOUS), "nomand": UInt(BRIG_MS_MANDLOCK),
        "atime": UInt(BRIG_MS_NOATIME), "diratime": UInt(BRIG_MS_NODIRATIME), "norelatime": UInt(BRIG_MS_RELATIME),
        "nostrictatime": UInt(BRIG_MS_STRICTATIME), "loud": UInt(BRIG_MS_SILENT), "nolazytime": UInt(BRIG_MS_LAZYTIME),
        "noiversion": UInt(BRIG_MS_I_VERSION), "symfollow": UInt(BRIG_MS_NOSYMFOLLOW),
    ]
    public static let propagationFlags: [String: UInt] = [
        "private": UInt(BRIG_MS_PRIVATE), "rprivate": UInt(BRIG_MS_PRIVATE | BRIG_MS_REC),
        "shared": UInt(BRIG_MS_SHARED), "rshared": UInt(BRIG_MS_SHARED | BRIG_MS_REC),
        "slave": UInt(BRIG_MS_SLAVE), "rslave": UInt(BRIG_MS_SLAVE | BRIG_MS_REC),
        "unbindable": UInt(BRIG_MS_UNBINDABLE), "runbindable": UInt(BRIG_MS_UNBINDABLE | BRIG_MS_REC),
    ]

    public init() {}

    public static func parse(_ options: [String]) -> MountOptions {
        var o = MountOptions()
        for opt in options {
            if opt == "bind" { o.bind = true; continue }
            if opt == "rbind" { o.bind = true; o.recursive = true; continue }
            if opt == "defaults" { continue }
            if opt == "tmpcopyup" { o.tmpcopyup = true; continue }
            if let f = setting[opt] { o.flags |= f; o.cleared &= ~f; continue }
            if let f = clearing[opt] { o.flags &= ~f; o.cleared |= f; continue }
            if let p = propagationFlags[opt] { o.propagation.append(p); continue }
            if let a = recursiveSetting[opt] { o.recursiveSet |= a; o.recursiveClear &= ~a; continue }
            if let a = recursiveClearing[opt] { o.recursiveClear |= a; o.recursiveSet &= ~a; continue }
            o.data.append(opt)
        }
        return o
    }

    /// The per-mount flags as mount_setattr(2) MOUNT_ATTR_* bits (set, clear), for a bind made
    /// from a detached tree: only what the options set changes (a flag the source has stays, as
    /// the kernel keeps it in a user namespace); one atime mode, strictatime > noatime > relatime.
    public var mountAttributes: (set: UInt64, clear: UInt64) {
        let perMount: [(UInt, UInt64)] = [
            (UInt(BRIG_MS_RDONLY), 0x1), (UInt(BRIG_MS_NOSUID), 0x2), (UInt(BRIG_MS_NODEV), 0x4),
            (UInt(BRIG_MS_NOEXEC), 0x8), (UInt(BRIG_MS_NODIRATIME), 0x80), (UInt(BRIG_MS_NOSYMFOLLOW), 0x200000),
        ]
        var set: UInt64 = 0, clear: UInt64 = 0
        for (ms, attr) in perMount where flags & ms != 0 { set |= attr }
        let atimeMask: UInt64 = 0x70
        if flags & UInt(BRIG_MS_STRICTATIME) != 0 { set |= 0x20; clear |= atimeMask }
        else if flags & UInt(BRIG_MS_NOATIME) != 0 { set |= 0x10; clear |= atimeMask }
        else if flags & UInt(BRIG_MS_RELATIME) != 0 { clear |= atimeMask }
        return (set, clear)
    }

    public var dataString: String { data.joined(separator: ",") }
    public var readonly: Bool { flags & UInt(BRIG_MS_RDONLY) != 0 }
}
