import BrigLinux
import CBrigSeccompShim
import CSeccomp
import Glibc

extension CompiledProfile {
    /// Builds the filter and installs it on the calling process. Returns the seccomp notify
    /// (listener) fd when some rule uses `SCMP_ACT_NOTIFY`, else `nil`.
    ///
    /// Call it in the container's init process, single-threaded, as the last step before
    /// `execve`: once the filter is installed nothing here allocates or can fail. It does not set
    /// no_new_privs (the runtime does that for `process.noNewPrivileges`); without it the caller
    /// needs CAP_SYS_ADMIN. The filter covers the native architecture plus `architectures`.
    public func load() throws(SystemError) -> Int32? {
        if usesNotify && flags.contains(.waitKillableRecv) {
            // libseccomp < 2.6 has no WAIT_KILLABLE_RECV attribute: install its BPF ourselves.
            return try loadWithKernelFlags()
        }
        let ctx = try context()
        defer { seccomp_release(ctx) }
        let rc = seccomp_load(ctx)
        if rc < 0 { throw SystemError(errno: -rc, "seccomp: load filter") }
        guard usesNotify else { return nil }
        let fd = seccomp_notify_fd(ctx)
        if fd < 0 { throw SystemError(errno: -fd, "seccomp: get notify fd") }
        return fd
    }

    /// The classic-BPF program `load()` would install (8 bytes per instruction, native endian),
    /// as libseccomp's `seccomp_export_bpf` writes it. For tests and debugging.
    public func exportBPF() throws(SystemError) -> [UInt8] {
        let ctx = try context()
        defer { seccomp_release(ctx) }
        return try Self.export(ctx)
    }

    func context() throws(SystemError) -> scmp_filter_ctx {
        do { return try FilterBuilder.make(self) } catch { throw error.systemError }
    }

    static func export(_ ctx: scmp_filter_ctx) throws(SystemError) -> [UInt8] {
        let fd = try sys("seccomp: memfd_create for BPF export") { brig_memfd("brig-seccomp-bpf") }
        defer { close(fd) }
        let rc = seccomp_export_bpf(ctx, fd)
        if rc < 0 { throw SystemError(errno: -rc, "seccomp: export BPF") }
        let size = try sys("seccomp: seek BPF export") { lseek(fd, 0, SEEK_END) }
        try sys("seccomp: rewind BPF export") { lseek(fd, 0, SEEK_SET) }
        var bytes = [UInt8](repeating: 0, count: Int(size))
        var done = 0
        while done < bytes.count {
            let n = try sys("seccomp: read BPF export") {
                bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + done, $0.count - done) }
            }
            if n == 0 { break }
            done += n
        }
        return Array(bytes.prefix(done))
    }

    /// Installs the exported program with seccomp(2), passing the flags libseccomp 2.5 can't.
    func loadWithKernelFlags() throws(SystemError) -> Int32 {
        let ctx = try context()
        defer { seccomp_release(ctx) }
        let program = try Self.export(ctx)
        let count = program.count / 8
        guard count > 0, count <= Int(UInt16.max) else {
            throw SystemError(errno: EINVAL, "seccomp: filter has \(count) BPF instructions")
        }
        var kernelFlags: UInt32 = 1 << 3 | SeccompFilterFlags.waitKillableRecv.rawValue  // NEW_LISTENER
        if flags.contains(.log) { kernelFlags |= SeccompFilterFlags.log.rawValue }
        if flags.contains(.specAllow) { kernelFlags |= SeccompFilterFlags.specAllow.rawValue }
        return try sys("seccomp: load filter (SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV)") {
            program.withUnsafeBytes { brig_seccomp_set_filter(kernelFlags, $0.baseAddress, UInt16(count)) }
        }
    }
}
