#define _GNU_SOURCE
#include "brig_agent_init.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <linux/vm_sockets.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/io.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int proc_status;
static int root_status;

// --- Leaving the initramfs -------------------------------------------------------------------
// pivot_root(2) refuses a caller whose root is the initial rootfs, so containers (which pivot
// into their rootfs) cannot start from an initramfs. Like switch_root, PID 1 copies the
// initramfs into a tmpfs, moves that over /, chroots and re-executes /init there. /init itself
// (the agent, most of the initramfs's bytes) is not copied but bind-mounted from the initramfs:
// a copy would cost the guest its time and the host as much memory again.

#define NEW_ROOT "/.brig-root"
#define SWITCHED_ENV "BRIG_AGENT_SWITCHED_ROOT"

static char copy_path[4096];

static int copy_file(const char *from, const char *to, const struct stat *st) {
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0) return -1;
    int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st->st_mode & 07777);
    if (out < 0) { close(in); return -1; }
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0) {
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0) { close(in); close(out); return -1; }
            off += w;
        }
    }
    close(in);
    close(out);
    return n < 0 ? -1 : 0;
}

static int copy_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
    (void)ftw;
    if (strcmp(path, "/") == 0 || strncmp(path, NEW_ROOT, sizeof NEW_ROOT - 1) == 0 ||
        strncmp(path, "/proc/", 6) == 0)
        return 0;
    if (snprintf(copy_path, sizeof copy_path, NEW_ROOT "%s", path) >= (int)sizeof copy_path) return -1;
    int rc = 0;
    if (type == FTW_D) {
        rc = mkdir(copy_path, st->st_mode & 07777);
        if (rc != 0 && errno == EEXIST) rc = 0;
    } else if (type == FTW_SL) {
        char target[4096];
        ssize_t n = readlink(path, target, sizeof target - 1);
        if (n < 0) return -1;
        target[n] = 0;
        rc = symlink(target, copy_path);
    } else if (S_ISREG(st->st_mode) && strcmp(path, "/init") == 0) {
        int fd = open(copy_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st->st_mode & 07777);
        rc = fd < 0 ? -1 : close(fd);   // the mount point of the bind (leave_initramfs)
    } else if (S_ISREG(st->st_mode)) {
        rc = copy_file(path, copy_path, st);
    } else {
        rc = mknod(copy_path, st->st_mode, st->st_dev);
    }
    if (rc == 0) lchown(copy_path, st->st_uid, st->st_gid);
    return rc;
}

// Frees the initramfs's memory once copied (as switch_root does): everything on it but the new root.
static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
    (void)st; (void)ftw;
    if (strcmp(path, "/") == 0 || strncmp(path, NEW_ROOT, sizeof NEW_ROOT - 1) == 0 ||
        strcmp(path, "/proc") == 0 || strncmp(path, "/proc/", 6) == 0 || strcmp(path, "/init") == 0)
        return 0;
    if (type == FTW_DP) rmdir(path); else unlink(path);
    return 0;
}

static int root_is_initramfs(void) {
    // The initial root's mount id is the lowest; its mountinfo line names it "rootfs".
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f) return 0;
    char line[1024];
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        char mountpoint[512];
        if (sscanf(line, "%*d %*d %*s %*s %511s", mountpoint) == 1 && strcmp(mountpoint, "/") == 0) {
            found = strstr(line, " - rootfs ") != NULL;
            break;
        }
    }
    fclose(f);
    return found;
}

static void leave_initramfs(char **argv) {
    if (getenv(SWITCHED_ENV)) { unsetenv(SWITCHED_ENV); root_status = 1; return; }
    if (!root_is_initramfs()) return;
    mkdir(NEW_ROOT, 0755);
    if (mount("tmpfs", NEW_ROOT, "tmpfs", 0, "mode=0755") != 0 ||
        nftw("/", copy_entry, 64, FTW_PHYS | FTW_MOUNT) != 0 ||
        mount("/init", NEW_ROOT "/init", NULL, MS_BIND, NULL) != 0) {
        root_status = -errno;
        return;
    }
    nftw("/", remove_entry, 64, FTW_PHYS | FTW_MOUNT | FTW_DEPTH);
    if (umount2("/proc", MNT_DETACH) != 0 || chdir(NEW_ROOT) != 0 ||
        mount(".", "/", NULL, MS_MOVE, NULL) != 0 || chroot(".") != 0 || chdir("/") != 0) {
        root_status = -errno;
        return;
    }
    static char *envp[] = { SWITCHED_ENV "=1", NULL };
    execve("/init", argv, envp);
    root_status = -errno;
}

// A static Swift binary reads /proc/self/exe while its runtime starts, before main; as PID 1 of a
// fresh guest nothing is mounted yet, so mount proc first. Priority 101 runs ahead of everything.
__attribute__((constructor(101))) static void brig_agent_mount_proc(int argc, char **argv) {
    (void)argc;
    if (getpid() != 1) return;
    mkdir("/proc", 0555);
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0 && errno != EBUSY) {
        proc_status = -errno;
        return;
    }
    proc_status = 1;
    leave_initramfs(argv);
    // After a failed switch /proc may be gone; make sure it is there for the Swift runtime.
    if (root_status < 0) mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
}

int brig_agent_init_root_status(void) { return root_status; }

int brig_agent_init_proc_status(void) { return proc_status; }

int brig_finit_module(int fd, const char *params, int flags) {
    return (int)syscall(SYS_finit_module, fd, params, flags);
}

int brig_power_off(void) {
    sync();
    return reboot(RB_POWER_OFF);
}

int brig_outb_exit(unsigned short port, unsigned char code) {
    if (ioperm(port, 1, 1) != 0) return -1;
    outb(code, port);
    return 0;
}

int brig_vsock_listen(unsigned int port, int backlog) {
    int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_vm addr = {0};
    addr.svm_family = AF_VSOCK;
    addr.svm_cid = VMADDR_CID_ANY;
    addr.svm_port = port;
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, backlog) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int brig_interface_up(const char *name) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    int rc = ioctl(fd, SIOCGIFFLAGS, &ifr);
    if (rc == 0) {
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        rc = ioctl(fd, SIOCSIFFLAGS, &ifr);
    }
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}
