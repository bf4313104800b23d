// Small C helpers for brig's seccomp code: what Swift cannot express directly (the variadic
// syscall(2), CMSG_* macros for SCM_RIGHTS, the seccomp notify ioctls). Names use the brig_sc_
// prefix so they never collide with CBrigShim's (which has its own brig_send_fd/brig_recv_fd).
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/// seccomp(SECCOMP_SET_MODE_FILTER, flags, prog) with a classic-BPF program of `count` 8-byte
/// instructions. Returns the kernel's result (a listener fd with NEW_LISTENER), or -1 with errno.
int brig_sc_set_filter(unsigned int flags, const void *instructions, unsigned short count);

/// Whether seccomp(2) accepts `flags` for SECCOMP_SET_MODE_FILTER, installing nothing: with a NULL
/// program known flags fail with EFAULT, unknown ones with EINVAL. Returns 1 if accepted, else 0.
int brig_sc_filter_flags_supported(unsigned int flags);

/// memfd_create(name, MFD_CLOEXEC). Returns the fd or -1 with errno set.
int brig_sc_memfd(const char *name);

/// Raw syscall(2) with six integer arguments. Returns the result or -1 with errno set.
long brig_sc_syscall6(long nr, unsigned long a0, unsigned long a1, unsigned long a2,
                   unsigned long a3, unsigned long a4, unsigned long a5);

/// SECCOMP_IOCTL_NOTIF_RECV on a listener fd: waits for one notification.
/// Returns 0 (filling id, pid, syscall number and the first argument) or -1 with errno set.
int brig_sc_notif_recv(int notify_fd, uint64_t *id, uint32_t *pid, int32_t *nr, uint64_t *arg0);

/// SECCOMP_IOCTL_NOTIF_SEND: answers notification `id`. With `continue_syscall` nonzero the
/// kernel runs the syscall (SECCOMP_USER_NOTIF_FLAG_CONTINUE); otherwise the caller sees
/// `error` (a negative errno, or 0 with `val` as the return value). Returns 0 or -1 with errno.
int brig_sc_notif_send(int notify_fd, uint64_t id, int32_t error, int64_t val, int continue_syscall);
