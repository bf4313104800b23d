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
    ///
    /// Ordering, as runc does it: with `process.noNewPrivileges`, set no_new_privs and call this
    /// last, right before `execve`; without it, call it before dropping capabilities / changing
    /// uid (loading is privileged then), so the profile must allow what follows. A returned fd
    /// goes to the runtime parent (SCM_RIGHTS over the sync socket), which hands it to the agent
    /// with `SeccompListener.send` and closes its copy.
    ///
    /// Like runc, deny-by-default filters get the ENOSYS stub (see `EnosysStub`) and are then
    /// installed with seccomp(2) directly; so are filters that need
    /// `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`, which libseccomp 2.5 cannot set. Others go
    /// through `seccomp_load`.
    public func load() throws(SystemError) -> Int32? {
        let ctx = try context()
        defer { seccomp_release(ctx) }
        let stub = EnosysStub.instructions(for: self)
        if stub.isEmpty && !(usesNotify && flags.contains(.waitKillableRecv)) {
            let rc = seccomp_load(ctx)
            if rc < 0 { throw SystemError(errno: -rc, "seccomp: load filter") }
            guard usesNotify else { return nil }
            let fd = seccomp_notify_fd(ctx)
            if fd < 0 { throw SystemError(errno: -fd, "seccomp: get notify fd") }
            return fd
        }
        let program = stub.flatMap(\.bytes) + (try Self.export(ctx))
        let fd = try install(program)
        return usesNotify ? fd : nil
    }

    /// The classic-BPF program `load()` installs (8 bytes per instruction, host byte order):
    /// the ENOSYS stub, if any, followed by libseccomp's `seccomp_export_bpf` output.
    public func exportBPF() throws(SystemError) -> [UInt8] {
        let ctx = try context()
        defer { seccomp_release(ctx) }
        return EnosysStub.instructions(for: self).flatMap(\.bytes) + (try Self.export(ctx))
    }

    /// The `SECCOMP_FILTER_FLAG_*` bits `load()` passes to seccomp(2) on the direct path.
    var kernelFlags: UInt32 {
        var bits: UInt32 = 0
        if flags.contains(.log) { bits |= SeccompFilterFlags.log.rawValue }
        if flags.contains(.specAllow) { bits |= SeccompFilterFlags.specAllow.rawValue }
        if usesNotify {
            bits |= 1 << 3  // SECCOMP_FILTER_FLAG_NEW_LISTENER
            if flags.contains(.waitKillableRecv) { bits |= SeccompFilterFlags.waitKillableRecv.rawValue }
        }
        return bits
    }

    func context() throws(SystemError) -> scmp_filter_ctx {
        do { return try FilterBuilder.make(self) } catch { throw error.systemError }
    }

    /// Installs `program` with seccomp(SECCOMP_SET_MODE_FILTER); returns the syscall's result
    /// (the listener fd when NEW_LISTENER is set).
    func install(_ program: [UInt8]) throws(SystemError) -> Int32 {
        let count = program.count / 8
        guard count > 0, count <= FilterBuilder.maxInstructions else {
            throw SystemError(errno: EINVAL, "seccomp: filter has \(count) BPF instructions (at most \(FilterBuilder.maxInstructions))")
        }
        let bits = kernelFlags
        return try sys("seccomp: load filter") {
            program.withUnsafeBytes { brig_sc_set_filter(bits, $0.baseAddress, UInt16(count)) }
        }
    }

    static func export(_ ctx: scmp_filter_ctx) throws(SystemError) -> [UInt8] {
        let fd = try sys("seccomp: memfd_create for BPF export") { brig_sc_memfd("brig-seccomp-bpf") }
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
}
