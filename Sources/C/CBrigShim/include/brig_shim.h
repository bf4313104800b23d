// The thin C layer: what Swift's Glibc module does not expose (variadic prctl/ioctl, raw
// syscalls without glibc wrappers, SCM_RIGHTS control messages, kernel ABI constants).
// Every function is a direct call with no allocation, usable after fork.
#pragma once
#include <stdint.h>
#include <sys/types.h>

// Namespace clone flags.
enum {
    BRIG_CLONE_NEWNS = 0x00020000, BRIG_CLONE_NEWCGROUP = 0x02000000, BRIG_CLONE_NEWUTS = 0x04000000,
    BRIG_CLONE_NEWIPC = 0x08000000, BRIG_CLONE_NEWUSER = 0x10000000, BRIG_CLONE_NEWPID = 0x20000000,
    BRIG_CLONE_NEWNET = 0x40000000, BRIG_CLONE_NEWTIME = 0x00000080,
};

enum { BRIG_O_PATH = 010000000 };

// mount(2) flags.
enum {
    BRIG_MS_RDONLY = 1, BRIG_MS_NOSUID = 2, BRIG_MS_NODEV = 4, BRIG_MS_NOEXEC = 8, BRIG_MS_SYNCHRONOUS = 16,
    BRIG_MS_REMOUNT = 32, BRIG_MS_MANDLOCK = 64, BRIG_MS_DIRSYNC = 128, BRIG_MS_NOSYMFOLLOW = 256,
    BRIG_MS_NOATIME = 1024, BRIG_MS_NODIRATIME = 2048, BRIG_MS_BIND = 4096, BRIG_MS_MOVE = 8192,
    BRIG_MS_REC = 16384, BRIG_MS_SILENT = 32768, BRIG_MS_UNBINDABLE = (1 << 17), BRIG_MS_PRIVATE = (1 << 18),
    BRIG_MS_SLAVE = (1 << 19), BRIG_MS_SHARED = (1 << 20), BRIG_MS_RELATIME = (1 << 21),
    BRIG_MS_I_VERSION = (1 << 23), BRIG_MS_STRICTATIME = (1 << 24), BRIG_MS_LAZYTIME = (1 << 25),
    BRIG_MNT_DETACH = 2,
};

int brig_unshare(int flags);
int brig_setns(int fd, int nstype);
int brig_pivot_root(const char *new_root, const char *put_old);
int brig_mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data);
int brig_umount2(const char *target, int flags);
int brig_sethostname(const char *name, size_t len);
int brig_setdomainname(const char *name, size_t len);
int brig_setgroups(size_t size, const gid_t *list);
int brig_mknod(const char *path, mode_t mode, unsigned int major, unsigned int minor);
unsigned int brig_major(uint64_t dev);
unsigned int brig_minor(uint64_t dev);

// prctl wrappers.
int brig_prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5);
int brig_set_no_new_privs(void);
int brig_set_child_subreaper(void);
int brig_set_pdeathsig(int sig);
int brig_capbset_drop(int cap);
int brig_cap_ambient_raise(int cap);
int brig_cap_ambient_clear_all(void);
int brig_set_keepcaps(int on);
int brig_cap_last_cap(void);

// capset(2) with the v3 ABI: 64-bit sets split into two 32-bit words.
int brig_capset(uint64_t effective, uint64_t permitted, uint64_t inheritable);
int brig_capget(uint64_t *effective, uint64_t *permitted, uint64_t *inheritable);

// openat2(2) with RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS (and optionally RESOLVE_NO_XDEV).
int brig_openat2(int dirfd, const char *path, int flags, int mode, uint64_t resolve);
enum { BRIG_RESOLVE_NO_XDEV = 0x01, BRIG_RESOLVE_NO_MAGICLINKS = 0x02, BRIG_RESOLVE_NO_SYMLINKS = 0x04,
       BRIG_RESOLVE_BENEATH = 0x08, BRIG_RESOLVE_IN_ROOT = 0x10 };

// Terminals.
int brig_ioctl_int(int fd, unsigned long request, int arg);
int brig_ioctl_ptr(int fd, unsigned long request, void *arg);
int brig_tiocsctty(int fd);
int brig_ptsname(int master, char *buf, size_t len);
int brig_unlockpt(int master);
int brig_set_winsize(int fd, unsigned short rows, unsigned short cols);
int brig_get_winsize(int fd, unsigned short *rows, unsigned short *cols);

// Passing file descriptors over Unix sockets (SCM_RIGHTS; the one implementation).
/// One sendmsg(2) of `len` bytes of `data` (one NUL byte when `len` is 0) plus `fd`, retried on
/// EINTR. Returns the number of data bytes sent (a stream socket may take fewer), or -1.
ssize_t brig_send_fd(int sock, int fd, const void *data, size_t len);
/// Receives at most one fd; *fd is -1 if none came. Returns bytes of data or -1.
ssize_t brig_recv_fd(int sock, int *fd, void *data, size_t len);

// Misc.
int brig_personality(unsigned long persona);
/// Marks every fd >= `first` close-on-exec: close_range(CLOSE_RANGE_CLOEXEC), or, where that is
/// refused (a seccomp profile without close_range: EPERM or ENOSYS; Linux < 5.11: EINVAL), each fd
/// listed in /proc/self/fd with fcntl. Returns 0, or -1 with errno.
int brig_mark_cloexec_from(unsigned int first);
/// brig_mark_cloexec_from's fallback on its own: fcntl(FD_CLOEXEC) on each fd >= `first` that
/// /proc/self/fd lists. Returns 0, or -1 with errno.
int brig_mark_cloexec_walk(unsigned int first);
pid_t brig_waitpid(pid_t pid, int *status, int options);
int brig_wifexited(int status);
int brig_wexitstatus(int status);
int brig_wifsignaled(int status);
int brig_wtermsig(int status);
int brig_execve(const char *path, char *const argv[], char *const envp[]);
pid_t brig_fork(void);
int brig_pipe_cloexec(int fds[2]);
int brig_setrlimit(int resource, uint64_t soft, uint64_t hard);
int brig_setresuid(uid_t uid);
int brig_setresgid(gid_t gid);
int brig_mknodat(int dirfd, const char *name, mode_t mode, unsigned int major, unsigned int minor);
int brig_accept(int fd);
/// The peer's vsock CID; -2 when fd is not an AF_VSOCK socket, -1 on error.
long long brig_vsock_peer_cid(int fd);
/// A signalfd for the given signal numbers (which are blocked first). Returns the fd or -1.
int brig_signalfd(const int *signals, int count);
/// Reads one siginfo from a signalfd; returns the signal number or -1.
int brig_signalfd_read(int fd);
int brig_block_signals(const int *signals, int count);
/// keyctl(KEYCTL_JOIN_SESSION_KEYRING, name): a fresh session keyring, as runc gives each container.
int brig_join_session_keyring(const char *name);
int brig_sched_setattr(uint32_t policy, uint64_t flags, int32_t nice, uint32_t priority,
                       uint64_t runtime, uint64_t deadline, uint64_t period);
int brig_ioprio_set(int value);
// getrandom(2) from the urandom pool (flags 0): bytes filled, or -1 with errno.
long brig_getrandom(void *buf, unsigned long len);
int brig_set_mempolicy(int mode, const uint64_t *mask, unsigned long maxnode);
int brig_sched_setaffinity(const uint64_t *mask, size_t words);
/// Moves interface `name` into the network namespace `netns_fd`, renamed `newname`, via rtnetlink.
/// Returns 0 or -errno.
int brig_link_move(const char *name, int netns_fd, const char *newname);

// The binary `brig init` runs from (CVE-2019-5736): an O_CLOEXEC fd that can't be written
// through, or -errno. brig_exe_detached_ro: a detached read-only clone of the file's mount (no
// copy, in no mount table); brig_exe_memfd: a sealed memfd copy (the fallback without CAP_SYS_ADMIN).
int brig_exe_detached_ro(const char *path);
int brig_exe_memfd(const char *path);
/// open_tree(path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC [| AT_RECURSIVE]): a detached copy of the
/// mount at `path` (without its submounts unless `recursive`), or -1 with errno.
int brig_open_tree_clone(const char *path, int recursive);
/// renameat2(2) with any flags (virtio-fs RENAME2: NOREPLACE, EXCHANGE).
int brig_renameat2(int olddir, const char *from, int newdir, const char *to, unsigned flags);
/// renameat2(RENAME_NOREPLACE): EEXIST when `to` exists (a directory too, even empty).
int brig_rename_noreplace(const char *from, const char *to);

/// mount_setattr(path, AT_RECURSIVE) setting `set` and clearing `clr` (MOUNT_ATTR_* bits): runc's
/// recursive mount options (`rro`, `rnosuid`, ...). Returns 0 or -1 with errno.
int brig_mount_setattr_recursive(const char *path, uint64_t set, uint64_t clr);
/// A bind source cloned on the host side, before the init enters a user namespace: a detached
/// copy of the mount at `path` (open_tree OPEN_TREE_CLONE; the whole subtree when `recursive`),
/// MOUNT_ATTR_* `set`/`clr` on its top mount and `propagation` (MS_SLAVE, MS_PRIVATE or 0) on
/// every mount in it. Returns an O_CLOEXEC fd or -errno.
int brig_detached_bind(const char *path, int recursive, uint64_t set, uint64_t clr, uint64_t propagation);
/// move_mount(2) of the detached tree `from` onto the O_PATH fd `to`. Returns 0 or -1 with errno.
int brig_move_mount_fd(int from, int to);
/// faccessat(AT_EACCESS) through faccessat2: effective ids and capabilities, as execve sees them.
/// Where faccessat2 is refused (Linux < 5.8, or a seccomp profile without it: ENOSYS or EPERM),
/// as runc: access(2) when the real and effective ids agree (the same answer then), else 0 (execve
/// will judge). Returns 0, or -1 with errno.
int brig_eaccess(const char *path, int mode);
#include <spawn.h>
/// posix_spawn_file_actions_addclosefrom_np (glibc 2.34): close every fd >= `from` in the child.
int brig_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int from);
/// posix_spawn_file_actions_addchdir_np (glibc 2.29): the child changes to `path` before it execs.
int brig_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path);
/// posix_spawn of `path` straight into the cgroup2 directory open at `cgroup_fd`: a vfork-style
/// clone3(CLONE_VM | CLONE_VFORK | CLONE_INTO_CGROUP), then dup2 of the (source, target) pairs
/// in `fds` (an fd onto itself loses FD_CLOEXEC), default signal dispositions, an empty mask,
/// execve. Returns the pid; -errno when clone3 failed (no child: ENOSYS before Linux 5.3 or on
/// other architectures than x86_64, E2BIG/EINVAL before 5.7, or the cgroup refused it); 0 with
/// `*exec_errno` set when the child could not exec (it has been reaped).
pid_t brig_spawn_into_cgroup(const char *path, char *const argv[], char *const envp[], const int *fds, int nfds,
                             int cgroup_fd, int *exec_errno);
