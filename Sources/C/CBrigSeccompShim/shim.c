#define _GNU_SOURCE
#include "brig_seccomp_shim.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

int brig_sc_set_filter(unsigned int flags, const void *instructions, unsigned short count) {
    struct sock_fprog prog = { .len = count, .filter = (struct sock_filter *)instructions };
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
}

int brig_sc_filter_flags_supported(unsigned int flags) {
    long rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, NULL);
    return rc == -1 && errno == EFAULT;
}

int brig_sc_memfd(const char *name) {
    return memfd_create(name, MFD_CLOEXEC);
}

long brig_sc_syscall6(long nr, unsigned long a0, unsigned long a1, unsigned long a2,
                   unsigned long a3, unsigned long a4, unsigned long a5) {
    return syscall(nr, a0, a1, a2, a3, a4, a5);
}

/* The kernel's notification structs may be larger than this header's: allocate the larger of the
 * kernel's size (SECCOMP_GET_NOTIF_SIZES) and ours. `response` picks seccomp_notif_resp. */
static void *notif_alloc(int response) {
    struct seccomp_notif_sizes sizes;
    if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) != 0) return NULL;
    size_t kernel = response ? sizes.seccomp_notif_resp : sizes.seccomp_notif;
    size_t ours = response ? sizeof(struct seccomp_notif_resp) : sizeof(struct seccomp_notif);
    void *p = calloc(1, kernel > ours ? kernel : ours);
    if (p == NULL) errno = ENOMEM;
    return p;
}

int brig_sc_notif_recv(int notify_fd, uint64_t *id, uint32_t *pid, int32_t *nr, uint64_t *arg0) {
    struct seccomp_notif *req = notif_alloc(0);
    if (req == NULL) return -1;
    int rc;
    do { rc = ioctl(notify_fd, SECCOMP_IOCTL_NOTIF_RECV, req); } while (rc != 0 && errno == EINTR);
    if (rc == 0) {
        *id = req->id; *pid = req->pid; *nr = req->data.nr; *arg0 = req->data.args[0];
    }
    int saved = errno;
    free(req);
    errno = saved;
    return rc;
}

int brig_sc_notif_send(int notify_fd, uint64_t id, int32_t error, int64_t val, int continue_syscall) {
    struct seccomp_notif_resp *resp = notif_alloc(1);
    if (resp == NULL) return -1;
    resp->id = id;
    if (continue_syscall) {
        resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    } else {
        resp->error = error;
        resp->val = val;
    }
    int rc = ioctl(notify_fd, SECCOMP_IOCTL_NOTIF_SEND, resp);
    int saved = errno;
    free(resp);
    errno = saved;
    return rc;
}
