#define _GNU_SOURCE
#include "brig_agent_init.h"

#include <errno.h>
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

// A static Swift binary reads /proc/self/exe while its runtime starts, before main; as PID 1 of a
// fresh guest nothing is mounted yet, so mount proc first. Priority 101 runs ahead of everything.
__attribute__((constructor(101))) static void brig_agent_mount_proc(void) {
    if (getpid() != 1) return;
    mkdir("/proc", 0555);
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) == 0 || errno == EBUSY)
        proc_status = 1;
    else
        proc_status = -errno;
}

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

int brig_vsock_accept(int listener) { return accept4(listener, NULL, NULL, SOCK_CLOEXEC); }
