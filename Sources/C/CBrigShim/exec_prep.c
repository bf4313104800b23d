// The last checks and fd hygiene of a container's process before execve, done where the
// container's seccomp filter may already refuse newer syscalls.
#define _GNU_SOURCE
#include "brig_shim.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

int brig_eaccess(const char *path, int mode) {
    long r = syscall(SYS_faccessat2, AT_FDCWD, path, mode, AT_EACCESS);
    if (r == 0 || (errno != ENOSYS && errno != EPERM)) return (int)r;
    if (getuid() == geteuid() && getgid() == getegid()) return access(path, mode);
    return 0;
}

struct brig_dirent64 {
    unsigned long long d_ino;
    long long d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

int brig_mark_cloexec_from(unsigned int first) {
    if (syscall(SYS_close_range, first, ~0U, 4 /* CLOSE_RANGE_CLOEXEC */) == 0) return 0;
    if (errno != ENOSYS && errno != EPERM && errno != EINVAL) return -1;
    int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) return -1;
    char buf[4096];
    int failed = 0;
    for (;;) {
        long n = syscall(SYS_getdents64, dir, buf, sizeof buf);
        if (n < 0) { failed = errno; break; }
        if (n == 0) break;
        for (long at = 0; at < n;) {
            struct brig_dirent64 *d = (struct brig_dirent64 *)(buf + at);
            at += d->d_reclen;
            char *end = NULL;
            long fd = strtol(d->d_name, &end, 10);
            if (end == d->d_name || *end != 0 || fd < (long)first || fd == dir) continue;
            if (fcntl((int)fd, F_SETFD, FD_CLOEXEC) != 0 && errno != EBADF && !failed) failed = errno;
        }
    }
    close(dir);
    if (failed) { errno = failed; return -1; }
    return 0;
}
