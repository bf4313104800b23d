#if canImport(Glibc)
import Glibc
#endif
import BrigLinux
import BrigOCI
import BrigSeccomp
import CBrigSeccompShim
import CBrigShim

/// Firecracker-jailer-style confinement of a VMM process (the microvm monitor, `brig vm boot
/// --seccomp`). Call `apply()` once the VM is built — kernel, initrd and disk files opened, KVM
/// VM and vCPU fds created — and before any thread is started, so that every later thread
/// (vCPUs, vsock, relay, signals) inherits both the namespaces and the filter.
///
/// 1. New IPC, UTS and network namespaces. The VMM needs no network: the vsock device and the
///    agent connection are path-based Unix sockets, which work across network namespaces
///    (abstract ones would not). No mount namespace: a private copy of the host's mount table
///    would pin the host's mounts (an engine unmounting a container rootfs would find it still
///    referenced); Firecracker's jailer instead chroots into an empty directory, which needs a
///    VMM that opens nothing by path after boot.
/// 2. no_new_privs and a seccomp allowlist (`profile`), installed with SECCOMP_FILTER_FLAG_TSYNC.
///    Default action ERRNO(EPERM), not Firecracker's KILL_PROCESS: the monitor's rare paths
///    (terminal setup, error reporting, teardown) then fail as errors the code already handles
///    instead of killing a container's monitor outright. Calls that the VMM never makes and that
///    would only serve an attacker (exec, ptrace, cross-process memory access, forking, module
///    and kexec loading, mount, namespace changes) kill the process.
public enum VMMJail {
    /// `BRIG_VMM_SECCOMP=0` turns the jail off (namespaces and filter) for debugging.
    public static let disableVariable = "BRIG_VMM_SECCOMP"

    public static var disabledByEnvironment: Bool {
        guard let v = getenv(disableVariable) else { return false }
        return String(cString: v) == "0"
    }

    /// Namespaces the VMM moves into.
    public static let namespaces = Int32(BRIG_CLONE_NEWIPC | BRIG_CLONE_NEWUTS | BRIG_CLONE_NEWNET)

    /// Syscalls allowed with any arguments.
    public static let allowed: [String] = [
        // memory
        "brk", "mmap", "munmap", "mprotect", "mremap", "madvise",
        // threads, scheduling, futexes
        "futex", "set_robust_list", "get_robust_list", "rseq", "sched_yield", "sched_getaffinity",
        "gettid", "getpid", "getppid", "exit", "exit_group", "restart_syscall", "membarrier",
        "set_tid_address", "getrlimit", "prlimit64",
        // signals (pthread_kill kicks vCPUs; sigwait forwards signals)
        "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigtimedwait", "sigaltstack", "tgkill", "tkill",
        // time
        "clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday",
        // file descriptors already open, and the state directory's files
        "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev",
        "fsync", "fdatasync", "lseek", "close", "dup", "dup2", "dup3", "fcntl",
        "fstat", "newfstatat", "statx", "openat", "unlink", "unlinkat", "getcwd",
        "poll", "ppoll", "select", "pselect6", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait",
        "eventfd2", "pipe2", "getrandom",
        // the virtio-fs file server (FileServer): one-component lookups, reopen, changes, listing
        "openat2", "mkdirat", "mknodat", "symlinkat", "readlinkat", "renameat2", "linkat", "fchownat",
        "fchmodat", "ftruncate", "utimensat", "getdents64", "fstatfs",
        // Unix sockets (socket() itself is restricted below)
        "connect", "bind", "listen", "accept", "accept4", "sendmsg", "recvmsg", "sendto", "recvfrom",
        "shutdown", "setsockopt", "getsockopt", "getsockname", "getpeername",
    ]

    /// Syscalls that kill the process: nothing in the VMM makes them.
    public static let fatal: [String] = [
        "execve", "execveat", "ptrace", "process_vm_readv", "process_vm_writev", "fork", "vfork",
        "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
        "mount", "umount2", "pivot_root", "chroot", "setns", "unshare", "bpf", "perf_event_open",
        "keyctl", "add_key", "request_key", "userfaultfd", "open_by_handle_at",
    ]

    /// ioctl requests outside KVM's 0xAE type that the monitor uses on its host pty, and on the
    /// tap when the guest's virtio-net driver starts (TUNSETOFFLOAD: the offloads it accepted).
    static let ttyIoctls: [UInt64] = [
        0x5401, 0x5402, 0x5403, 0x5404,  // TCGETS, TCSETS, TCSETSW, TCSETSF
        0x540E, 0x5413, 0x5414,  // TIOCSCTTY, TIOCGWINSZ, TIOCSWINSZ
        0x541B, 0x5421, 0x5451,  // FIONREAD, FIONBIO, FIOCLEX
        0x8004_5430, 0x4004_5431,  // TIOCGPTN, TIOCSPTLCK
        0x4004_54D0,  // TUNSETOFFLOAD
    ]

    /// The allowlist as an OCI seccomp profile (so it goes through the same validation and
    /// compiler as a container's).
    public static var profile: Seccomp {
        let low32: UInt64 = 0xFFFF_FFFF, cloneThread: UInt64 = 0x0001_0000  // CLONE_THREAD
        var rules: [SeccompSyscall] = [
            SeccompSyscall(names: allowed, action: "SCMP_ACT_ALLOW"),
            SeccompSyscall(names: fatal, action: "SCMP_ACT_KILL_PROCESS"),
            // Only Unix sockets.
            SeccompSyscall(names: ["socket", "socketpair"], action: "SCMP_ACT_ALLOW",
                           args: [SeccompArg(index: 0, value: UInt64(AF_UNIX), op: "SCMP_CMP_EQ")]),
            // Threads only (pthread_create); glibc falls back from clone3 on ENOSYS.
            SeccompSyscall(names: ["clone"], action: "SCMP_ACT_ALLOW",
                           args: [SeccompArg(index: 0, value: cloneThread, valueTwo: cloneThread,
                                             op: "SCMP_CMP_MASKED_EQ")]),
            SeccompSyscall(names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: UInt32(ENOSYS)),
            // Every KVM ioctl (type 0xAE: system, VM and vCPU fds; KVM_RUN is the hot path).
            SeccompSyscall(names: ["ioctl"], action: "SCMP_ACT_ALLOW",
                           args: [SeccompArg(index: 1, value: 0xFF00, valueTwo: 0xAE00, op: "SCMP_CMP_MASKED_EQ")]),
        ]
        for request in ttyIoctls {
            rules.append(SeccompSyscall(names: ["ioctl"], action: "SCMP_ACT_ALLOW",
                                        args: [SeccompArg(index: 1, value: low32, valueTwo: request, op: "SCMP_CMP_MASKED_EQ")]))
        }
        return Seccomp(defaultAction: "SCMP_ACT_ERRNO", defaultErrnoRet: UInt32(EPERM), flags: [], syscalls: rules)
    }

    /// Enters the namespaces, sets no_new_privs and installs the filter on every thread.
    public static func apply() throws(SystemError) {
        try sys("unshare(IPC|UTS|NET) for the VMM") { brig_unshare(namespaces) }
        _ = sethostname("brig-vmm", 8)
        let program: [UInt8]
        do { program = try SeccompProfile.compile(profile).exportBPF() } catch let e as SystemError { throw e } catch {
            throw SystemError(errno: EINVAL, "VMM seccomp profile: \(error)")
        }
        try sys("prctl(PR_SET_NO_NEW_PRIVS)") { brig_set_no_new_privs() }
        let tsync: UInt32 = 1  // SECCOMP_FILTER_FLAG_TSYNC
        // With TSYNC the call returns the id of a thread that could not be synchronized.
        let rc = program.withUnsafeBytes { brig_sc_set_filter(tsync, $0.baseAddress, UInt16(program.count / 8)) }
        if rc < 0 { throw SystemError.last("seccomp(SET_MODE_FILTER, TSYNC) for the VMM") }
        if rc > 0 { throw SystemError(errno: EBUSY, "seccomp TSYNC: thread \(rc) could not be synchronized") }
    }
}
