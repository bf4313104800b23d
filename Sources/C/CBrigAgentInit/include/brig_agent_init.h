#ifndef BRIG_AGENT_INIT_H
#define BRIG_AGENT_INIT_H

#include <stddef.h>
#include <sys/types.h>

// PID 1 helpers for brig-agent in a guest VM. Linking this target also links a constructor that
// mounts /proc before the Swift runtime starts when the process is PID 1.

// 1 if the constructor mounted /proc, 0 if not PID 1, -errno on failure.
int brig_agent_init_proc_status(void);
// 1 if PID 1 copied the initramfs into a tmpfs root (pivot_root refuses rootfs), 0 if not
// needed, -errno on failure.
int brig_agent_init_root_status(void);
// finit_module(2): glibc has no wrapper.
int brig_finit_module(int fd, const char *params, int flags);
// reboot(2) with RB_POWER_OFF after sync; returns only on error.
int brig_power_off(void);
// Writes `code` to I/O port `port` (the VMM's exit device); -1 if ioperm is refused.
int brig_outb_exit(unsigned short port, unsigned char code);
// Sets IFF_UP on the named interface. -1 with errno on error.
int brig_interface_up(const char *name);
// AF_VSOCK listening socket on `port` (any CID), close-on-exec. -1 with errno on error.
int brig_vsock_listen(unsigned int port, int backlog);

#endif
