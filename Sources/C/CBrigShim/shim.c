#define _GNU_SOURCE
#include "brig_shim.h"
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>
#include <grp.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <linux/vm_sockets.h>
#include <sys/stat.h>
#include <sys/sendfile.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <termios.h>
#include <stdio.h>

int brig_unshare(int flags) { return unshare(flags); }
int brig_setns(int fd, int nstype) { return setns(fd, nstype); }
int brig_pivot_root(const char *n, const char *o) { return (int)syscall(SYS_pivot_root, n, o); }
int brig_mount(const char *s, const char *t, const char *f, unsigned long fl, const char *d) {
    return mount(s, t, f, fl, d);
}
int brig_umount2(const char *t, int fl) { return umount2(t, fl); }
int brig_sethostname(const char *n, size_t l) { return sethostname(n, l); }
int brig_setdomainname(const char *n, size_t l) { return setdomainname(n, l); }
int brig_setgroups(size_t s, const gid_t *l) { return setgroups(s, l); }
int brig_mknod(const char *p, mode_t m, unsigned int ma, unsigned int mi) { return mknod(p, m, makedev(ma, mi)); }
unsigned int brig_major(uint64_t d) { return major(d); }
unsigned int brig_minor(uint64_t d) { return minor(d); }

int brig_prctl(int o, unsigned long a, unsigned long b, unsigned long c, unsigned long d) { return prctl(o, a, b, c, d); }
int brig_set_no_new_privs(void) { return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); }
int brig_set_child_subreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }
int brig_set_pdeathsig(int sig) { return prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0); }
int brig_capbset_drop(int cap) { return prctl(PR_CAPBSET_DROP, cap, 0, 0, 0); }
int brig_cap_ambient_raise(int cap) { return prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0); }
int brig_cap_ambient_clear_all(void) { return prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); }
int brig_set_keepcaps(int on) { return prctl(PR_SET_KEEPCAPS, on, 0, 0, 0); }
int brig_cap_last_cap(void) {
    int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 40;
    char buf[16] = {0};
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) return 40;
    int v = 0;
    for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++) v = v * 10 + (buf[i] - '0');
    return v;
}

int brig_capset(uint64_t e, uint64_t p, uint64_t i) {
    struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct d[2];
    d[0].effective = (uint32_t)e; d[1].effective = (uint32_t)(e >> 32);
    d[0].permitted = (uint32_t)p; d[1].permitted = (uint32_t)(p >> 32);
    d[0].inheritable = (uint32_t)i; d[1].inheritable = (uint32_t)(i >> 32);
    return (int)syscall(SYS_capset, &h, d);
}
int brig_capget(uint64_t *e, uint64_t *p, uint64_t *i) {
    struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof(d));
    int r = (int)syscall(SYS_capget, &h, d);
    if (r == 0) {
        *e = ((uint64_t)d[1].effective << 32) | d[0].effective;
        *p = ((uint64_t)d[1].permitted << 32) | d[0].permitted;
        *i = ((uint64_t)d[1].inheritable << 32) | d[0].inheritable;
    }
    return r;
}

int brig_openat2(int dirfd, const char *path, int flags, int mode, uint64_t resolve) {
    struct open_how how;
    memset(&how, 0, sizeof(how));
    how.flags = (uint64_t)flags;
    how.mode = (uint64_t)mode;
    how.resolve = resolve;
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

int brig_ioctl_int(int fd, unsigned long r, int a) { return ioctl(fd, r, a); }
int brig_ioctl_ptr(int fd, unsigned long r, void *a) { return ioctl(fd, r, a); }
int brig_tiocsctty(int fd) { return ioctl(fd, TIOCSCTTY, 0); }
int brig_unlockpt(int master) { int u = 0; return ioctl(master, TIOCSPTLCK, &u); }
int brig_ptsname(int master, char *buf, size_t len) {
    unsigned int n;
    if (ioctl(master, TIOCGPTN, &n) < 0) return -1;
    int w = snprintf(buf, len, "/dev/pts/%u", n);
    return (w < 0 || (size_t)w >= len) ? -1 : 0;
}
int brig_set_winsize(int fd, unsigned short rows, unsigned short cols) {
    struct winsize ws = { rows, cols, 0, 0 };
    return ioctl(fd, TIOCSWINSZ, &ws);
}
int brig_get_winsize(int fd, unsigned short *rows, unsigned short *cols) {
    struct winsize ws;
    int r = ioctl(fd, TIOCGWINSZ, &ws);
    if (r == 0) { *rows = ws.ws_row; *cols = ws.ws_col; }
    return r;
}

ssize_t brig_send_fd(int sock, int fd, const void *data, size_t len) {
    char dummy = 0;
    struct iovec iov = { (void *)(len ? data : &dummy), len ? len : 1 };
    union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
    memset(&u, 0, sizeof(u));
    struct msghdr msg = { 0 };
    msg.msg_iov = &iov; msg.msg_iovlen = 1;
    msg.msg_control = u.buf; msg.msg_controllen = sizeof(u.buf);
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET; c->cmsg_type = SCM_RIGHTS; c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    ssize_t r;
    do { r = sendmsg(sock, &msg, MSG_NOSIGNAL); } while (r < 0 && errno == EINTR);
    return r < 0 ? -1 : r;
}

ssize_t brig_recv_fd(int sock, int *fd, void *data, size_t len) {
    struct iovec iov = { data, len };
    union { char buf[CMSG_SPACE(sizeof(int) * 4)]; struct cmsghdr align; } u;
    struct msghdr msg = { 0 };
    msg.msg_iov = &iov; msg.msg_iovlen = 1;
    msg.msg_control = u.buf; msg.msg_controllen = sizeof(u.buf);
    *fd = -1;
    ssize_t r;
    do { r = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC); } while (r < 0 && errno == EINTR);
    if (r < 0) return -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            int fds[4];
            memcpy(fds, CMSG_DATA(c), sizeof(int) * (n > 4 ? 4 : n));
            for (int i = 0; i < n && i < 4; i++) { if (*fd < 0) *fd = fds[i]; else close(fds[i]); }
        }
    }
    return r;
}

int brig_personality(unsigned long p) { return personality(p); }
pid_t brig_waitpid(pid_t pid, int *status, int options) { return waitpid(pid, status, options); }
int brig_wifexited(int s) { return WIFEXITED(s); }
int brig_wexitstatus(int s) { return WEXITSTATUS(s); }
int brig_wifsignaled(int s) { return WIFSIGNALED(s); }
int brig_wtermsig(int s) { return WTERMSIG(s); }
int brig_execve(const char *p, char *const a[], char *const e[]) { return execve(p, a, e); }
pid_t brig_fork(void) { return fork(); }
int brig_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }
#include <sys/resource.h>
int brig_setrlimit(int r, uint64_t soft, uint64_t hard) {
    struct rlimit rl = { soft, hard };
    return setrlimit(r, &rl);
}
int brig_setresuid(uid_t u) { return setresuid(u, u, u); }
int brig_setresgid(gid_t g) { return setresgid(g, g, g); }
int brig_mknodat(int d, const char *n, mode_t m, unsigned int ma, unsigned int mi) { return mknodat(d, n, m, makedev(ma, mi)); }
int brig_accept(int fd) { return accept4(fd, NULL, NULL, SOCK_CLOEXEC); }

long long brig_vsock_peer_cid(int fd) {
    struct sockaddr_vm addr;
    socklen_t len = sizeof addr;
    memset(&addr, 0, sizeof addr);
    if (getpeername(fd, (struct sockaddr *)&addr, &len) != 0) return -1;
    if (addr.svm_family != AF_VSOCK) return -2;
    return (long long)addr.svm_cid;
}
#include <signal.h>
#include <sys/signalfd.h>
int brig_block_signals(const int *sigs, int n) {
    sigset_t set; sigemptyset(&set);
    for (int i = 0; i < n; i++) sigaddset(&set, sigs[i]);
    return sigprocmask(SIG_BLOCK, &set, NULL);
}
int brig_signalfd(const int *sigs, int n) {
    sigset_t set; sigemptyset(&set);
    for (int i = 0; i < n; i++) sigaddset(&set, sigs[i]);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) return -1;
    return signalfd(-1, &set, SFD_CLOEXEC);
}
int brig_signalfd_read(int fd) {
    struct signalfd_siginfo si;
    ssize_t r;
    do { r = read(fd, &si, sizeof(si)); } while (r < 0 && errno == EINTR);
    return r == sizeof(si) ? (int)si.ssi_signo : -1;
}
int brig_join_session_keyring(const char *name) { return (int)syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, name); }
#include <net/if.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/if_link.h>

struct brig_sched_attr {
    uint32_t size, sched_policy; uint64_t sched_flags; int32_t sched_nice; uint32_t sched_priority;
    uint64_t sched_runtime, sched_deadline, sched_period;
};
int brig_sched_setattr(uint32_t policy, uint64_t flags, int32_t nice, uint32_t prio,
                       uint64_t runtime, uint64_t deadline, uint64_t period) {
    struct brig_sched_attr a = { sizeof(a), policy, flags, nice, prio, runtime, deadline, period };
    return (int)syscall(SYS_sched_setattr, 0, &a, 0);
}
int brig_ioprio_set(int value) { return (int)syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, 0, value); }
long brig_getrandom(void *buf, unsigned long len) { return syscall(SYS_getrandom, buf, len, 0); }
int brig_set_mempolicy(int mode, const uint64_t *mask, unsigned long maxnode) {
    return (int)syscall(SYS_set_mempolicy, mode, mask, maxnode);
}
int brig_sched_setaffinity(const uint64_t *mask, size_t words) {
    return (int)syscall(SYS_sched_setaffinity, 0, words * sizeof(uint64_t), mask);
}

static void brig_nl_attr(struct nlmsghdr *h, unsigned short type, const void *data, unsigned short len) {
    struct rtattr *rta = (struct rtattr *)((char *)h + NLMSG_ALIGN(h->nlmsg_len));
    rta->rta_type = type; rta->rta_len = RTA_LENGTH(len);
    memcpy(RTA_DATA(rta), data, len);
    h->nlmsg_len = NLMSG_ALIGN(h->nlmsg_len) + RTA_ALIGN(rta->rta_len);
}
int brig_link_move(const char *name, int netns_fd, const char *newname) {
    unsigned int index = if_nametoindex(name);
    if (index == 0) return -errno;
    int sock = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (sock < 0) return -errno;
    union { char buf[1024]; struct nlmsghdr align; } u;
    memset(&u, 0, sizeof(u));
    struct nlmsghdr *h = &u.align;
    h->nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
    h->nlmsg_type = RTM_NEWLINK;
    h->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    h->nlmsg_seq = 1;
    struct ifinfomsg *ifi = NLMSG_DATA(h);
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_index = (int)index;
    uint32_t fd32 = (uint32_t)netns_fd;
    brig_nl_attr(h, IFLA_NET_NS_FD, &fd32, sizeof(fd32));
    if (newname && *newname) brig_nl_attr(h, IFLA_IFNAME, newname, (unsigned short)(strlen(newname) + 1));
    if (send(sock, h, h->nlmsg_len, 0) < 0) { int e = errno; close(sock); return -e; }
    char rbuf[4096];
    ssize_t n = recv(sock, rbuf, sizeof(rbuf), 0);
    close(sock);
    if (n < 0) return -errno;
    struct nlmsghdr *r = (struct nlmsghdr *)rbuf;
    if (NLMSG_OK(r, (unsigned)n) && r->nlmsg_type == NLMSG_ERROR) {
        struct nlmsgerr *err = NLMSG_DATA(r);
        return err->error;  /* 0 or -errno */
    }
    return 0;
}

/* A handle on the binary at `path` that can't be written through, for CVE-2019-5736. First
 * choice: a detached clone of the file's mount (open_tree OPEN_TREE_CLONE) made read-only with
 * mount_setattr; it is attached nowhere, so it shows in no mount table and vanishes with its
 * last reference. Needs CAP_SYS_ADMIN and Linux >= 5.12. Returns an O_CLOEXEC fd or -errno. */
int brig_exe_detached_ro(const char *path) {
    int fd = (int)syscall(428 /* open_tree */, AT_FDCWD, path, 1 /* OPEN_TREE_CLONE */ | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct { uint64_t set, clr, propagation, userns; } attr = { 0x1 | 0x2 | 0x4 /* RDONLY|NOSUID|NODEV */, 0, 0, 0 };
    if (syscall(442 /* mount_setattr */, fd, "", AT_EMPTY_PATH, &attr, sizeof(attr)) != 0) {
        int e = errno; close(fd); return -e;
    }
    return fd;
}

/* Fallback: a sealed memfd copy of `path` (no write/grow/shrink, seals sealed), as runc >= 1.2
 * and crun do. Costs a copy of the binary. Returns an O_CLOEXEC fd or -errno. */
#include <elf.h>
#include <stddef.h>
/* The bytes exec needs of an ELF64 file: up to the end of its last PT_LOAD segment (section
 * headers, symbol tables and debug info lie past it and are never mapped); 0 when `src` is not
 * such a file or nothing would be saved. */
static off_t elf_loaded_end(int src, off_t size) {
    Elf64_Ehdr eh;
    if (pread(src, &eh, sizeof eh, 0) != (ssize_t)sizeof eh) return 0;
    if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
        eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > 256) return 0;
    off_t end = (off_t)(eh.e_phoff + (Elf64_Off)eh.e_phnum * sizeof(Elf64_Phdr));
    for (int i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        if (pread(src, &ph, sizeof ph, (off_t)(eh.e_phoff + (Elf64_Off)i * sizeof ph)) != (ssize_t)sizeof ph) return 0;
        off_t e = (off_t)(ph.p_offset + ph.p_filesz);
        if (e > end) end = e;  /* every segment, not only PT_LOAD: notes, TLS, EH frame stay */
    }
    return end > 0 && end < size ? end : 0;
}

int brig_exe_memfd(const char *path) {
    int fd = (int)syscall(SYS_memfd_create, "brig", 0x1U /* CLOEXEC */ | 0x2U /* ALLOW_SEALING */ | 0x10U /* EXEC */);
    if (fd < 0 && errno == EINVAL) fd = (int)syscall(SYS_memfd_create, "brig", 0x1U | 0x2U);
    if (fd < 0) return -errno;
    int src = open(path, O_RDONLY | O_CLOEXEC);
    if (src < 0) { int e = errno; close(fd); return -e; }
    struct stat st;
    if (fstat(src, &st) != 0) { int e = errno; close(src); close(fd); return -e; }
    /* Only what exec maps is copied (the symbol tables are about half a Swift binary), and the
     * copy's header says it has no section headers, as a stripped file would. */
    off_t len = elf_loaded_end(src, st.st_size);
    off_t off = 0, size = len > 0 ? len : st.st_size;
    while (off < size) {
        ssize_t n = sendfile(fd, src, &off, (size_t)(size - off));
        if (n <= 0) { int e = n < 0 ? errno : EIO; close(src); close(fd); return -e; }
    }
    close(src);
    if (len > 0) {
        Elf64_Off shoff = 0; Elf64_Half zero = 0;
        if (pwrite(fd, &shoff, sizeof shoff, offsetof(Elf64_Ehdr, e_shoff)) != (ssize_t)sizeof shoff ||
            pwrite(fd, &zero, sizeof zero, offsetof(Elf64_Ehdr, e_shnum)) != (ssize_t)sizeof zero ||
            pwrite(fd, &zero, sizeof zero, offsetof(Elf64_Ehdr, e_shstrndx)) != (ssize_t)sizeof zero) {
            int e = errno; close(fd); return -e;
        }
    }
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) != 0) {
        int e = errno; close(fd); return -e;
    }
    return fd;
}

#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
int brig_open_tree_clone(const char *path, int recursive) {
    unsigned flags = 1 /* OPEN_TREE_CLONE */ | O_CLOEXEC /* OPEN_TREE_CLOEXEC */ | (recursive ? 0x8000 /* AT_RECURSIVE */ : 0);
    return (int)syscall(SYS_open_tree, AT_FDCWD, path, flags);
}

int brig_renameat2(int olddir, const char *from, int newdir, const char *to, unsigned flags) {
    return (int)syscall(SYS_renameat2, olddir, from, newdir, to, flags);
}

int brig_rename_noreplace(const char *from, const char *to) {
    return (int)syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, 1 /* RENAME_NOREPLACE */);
}

#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef SYS_faccessat2
#define SYS_faccessat2 439
#endif
struct brig_mount_attr { uint64_t attr_set, attr_clr, propagation, userns_fd; };
int brig_mount_setattr_recursive(const char *path, uint64_t set, uint64_t clr) {
    struct brig_mount_attr a = { set, clr, 0, 0 };
    return (int)syscall(SYS_mount_setattr, AT_FDCWD, path, 0x8000 /* AT_RECURSIVE */, &a, sizeof a);
}
int brig_detached_bind(const char *path, int recursive, uint64_t set, uint64_t clr, uint64_t propagation) {
    int rec = recursive ? 0x8000 /* AT_RECURSIVE */ : 0;
    int fd = (int)syscall(428 /* open_tree */, AT_FDCWD, path, 1 /* OPEN_TREE_CLONE */ | O_CLOEXEC | rec);
    if (fd < 0) return -errno;
    struct brig_mount_attr top = { set, clr, 0, 0 }, all = { 0, 0, propagation, 0 };
    if ((set | clr) && syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH, &top, sizeof top) != 0) {
        int e = errno; close(fd); return -e;
    }
    if (propagation && syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | 0x8000, &all, sizeof all) != 0) {
        int e = errno; close(fd); return -e;
    }
    return fd;
}
int brig_move_mount_fd(int from, int to) {
    return (int)syscall(429 /* move_mount */, from, "", to, "", 0x4 /* F_EMPTY_PATH */ | 0x40 /* T_EMPTY_PATH */);
}
int brig_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
}

int brig_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path) {
    return posix_spawn_file_actions_addchdir_np(actions, path);
}
