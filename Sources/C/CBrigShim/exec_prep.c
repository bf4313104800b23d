// The last checks and fd hygiene of a container's process before execve, done where the
// container's seccomp filter may already refuse newer syscalls.
#define _GNU_SOURCE
#include "brig_shim.h"
#include <dirent.h>
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

int brig_mark_cloexec_from(unsigned int first) {
    if (syscall(SYS_close_range, first, ~0U, 4 /* CLOSE_RANGE_CLOEXEC */) == 0) return 0;
    if (errno != ENOSYS && errno != EPERM && errno != EINVAL) return -1;
    return brig_mark_cloexec_walk(first);
}

int brig_mark_cloexec_walk(unsigned int first) {
    DIR *dir = opendir("/proc/self/fd");
    if (!dir) return -1;
    int failed = 0;
    for (;;) {
        errno = 0;
        struct dirent *d = readdir(dir);
        if (!d) { if (errno && !failed) failed = errno; break; }
        char *end = NULL;
        long fd = strtol(d->d_name, &end, 10);
        if (end == d->d_name || *end != 0 || fd < (long)first || fd == dirfd(dir)) continue;
        if (fcntl((int)fd, F_SETFD, FD_CLOEXEC) != 0 && errno != EBADF && !failed) failed = errno;
    }
    closedir(dir);
    if (failed) { errno = failed; return -1; }
    return 0;
}
