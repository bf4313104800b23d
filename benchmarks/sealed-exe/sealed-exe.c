// Cost of the ways to give `brig init` a binary it can't write through (CVE-2019-5736), per
// create/exec, on a given binary: a detached read-only clone of its mount (open_tree +
// mount_setattr, brig's choice), a sealed memfd copy of the whole file (runc >= 1.2) and of
// what exec maps (brig's fallback: brig_exe_memfd, linked from CBrigShim by sealed-exe.sh), and
// the shared bind-mounted copy older brigs kept in /run/brig/.exe (first use: copy + 2 mounts;
// later uses: stat + statvfs). Each handle is also exec'd once and checked for EROFS/EPERM.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e3 + t.tv_nsec / 1e6; }

static int detached(const char *p) {
    int fd = (int)syscall(428, AT_FDCWD, p, 1 | O_CLOEXEC);
    if (fd < 0) return -1;
    struct { uint64_t set, clr, prop, userns; } a = { 0x7, 0, 0, 0 };
    if (syscall(442, fd, "", AT_EMPTY_PATH, &a, sizeof a) != 0) { close(fd); return -1; }
    return fd;
}

static int copy_into(int dst, const char *p) {
    int src = open(p, O_RDONLY | O_CLOEXEC);
    struct stat st; fstat(src, &st);
    off_t off = 0;
    while (off < st.st_size) if (sendfile(dst, src, &off, st.st_size - off) <= 0) { close(src); return -1; }
    close(src);
    return 0;
}

int brig_exe_memfd(const char *path);  // Sources/C/CBrigShim/shim.c

static int memfd(const char *p) {
    int fd = (int)syscall(SYS_memfd_create, "brig", 0x1U | 0x2U | 0x10U);
    if (fd < 0) fd = (int)syscall(SYS_memfd_create, "brig", 0x1U | 0x2U);
    if (fd < 0 || copy_into(fd, p) != 0) return -1;
    fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE);
    return fd;
}

// The old shared copy, in a private directory: first use copies and mounts, then stat+statvfs.
static int shared_first(const char *p, const char *dir) {
    char target[512]; snprintf(target, sizeof target, "%s/brig-copy", dir);
    int fd = open(target, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0555);
    if (fd < 0 || copy_into(fd, p) != 0) return -1;
    close(fd);
    if (mount(target, target, NULL, MS_BIND, NULL) != 0) return -1;
    if (mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) != 0) return -1;
    return 0;
}
static void shared_drop(const char *dir) {
    char target[512]; snprintf(target, sizeof target, "%s/brig-copy", dir);
    umount2(target, MNT_DETACH); unlink(target);
}
static int shared_later(const char *dir) {
    char target[512]; snprintf(target, sizeof target, "%s/brig-copy", dir);
    struct stat st; struct statvfs v;
    return stat("/proc/self/exe", &st) == 0 && statvfs(target, &v) == 0 && (v.f_flag & ST_RDONLY) ? 0 : -1;
}

static void check(const char *what, int fd) {
    char path[64]; snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    pid_t pid = fork();
    if (pid == 0) { int null = open("/dev/null", O_WRONLY); dup2(null, 1); char *av[] = { "brig", "--version", NULL }; execv(path, av); _exit(127); }
    int status; waitpid(pid, &status, 0);
    int w = open(path, O_WRONLY | O_CLOEXEC);
    int werr = errno;
    const char *result = w < 0 ? strerror(werr) : (write(w, "x", 1) < 0 ? strerror(errno) : "WRITABLE");
    printf("  %-34s exec %s, write: %s\n", what, WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "ok" : "FAILED", result);
    if (w >= 0) close(w);
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s BINARY ROUNDS TMPDIR\n", argv[0]); return 2; }
    const char *bin = argv[1]; int n = atoi(argv[2]); const char *dir = argv[3];
    struct stat st; if (stat(bin, &st) != 0) { perror(bin); return 1; }
    printf("%s (%.1f MiB), %d rounds, mean per create/exec:\n", bin, st.st_size / 1048576.0, n);
    double t = now_ms();
    for (int i = 0; i < n; i++) { int fd = detached(bin); if (fd < 0) { perror("open_tree"); return 1; } close(fd); }
    printf("  detached read-only mount (brig)    %8.3f ms\n", (now_ms() - t) / n);
    t = now_ms();
    for (int i = 0; i < n; i++) { int fd = memfd(bin); if (fd < 0) { perror("memfd"); return 1; } close(fd); }
    printf("  sealed memfd copy, whole file      %8.3f ms\n", (now_ms() - t) / n);
    t = now_ms();
    for (int i = 0; i < n; i++) { int fd = brig_exe_memfd(bin); if (fd < 0) { errno = -fd; perror("brig_exe_memfd"); return 1; } close(fd); }
    printf("  sealed memfd, loaded part (brig)   %8.3f ms\n", (now_ms() - t) / n);
    t = now_ms();
    for (int i = 0; i < n; i++) { if (shared_first(bin, dir) != 0) { perror("shared copy"); return 1; } shared_drop(dir); }
    printf("  old shared copy, first use         %8.3f ms\n", (now_ms() - t) / n);
    shared_first(bin, dir);
    t = now_ms();
    for (int i = 0; i < n; i++) shared_later(dir);
    printf("  old shared copy, later uses        %8.3f ms\n", (now_ms() - t) / n);
    shared_drop(dir);
    int fd = detached(bin); check("detached read-only mount:", fd); close(fd);
    fd = memfd(bin); check("sealed memfd copy:", fd); close(fd);
    fd = brig_exe_memfd(bin); check("sealed memfd, loaded part:", fd); close(fd);
    return 0;
}
