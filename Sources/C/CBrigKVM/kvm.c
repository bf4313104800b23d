#include "cbrigkvm.h"
#include <sys/ioctl.h>
#include <string.h>

int brig_kvm_ioctl(int fd, unsigned long request, void *arg) { return ioctl(fd, request, arg); }
int brig_kvm_ioctl_val(int fd, unsigned long request, unsigned long arg) { return ioctl(fd, request, arg); }

int brig_kvm_irq_line(int vm_fd, uint32_t irq, int level) {
    struct kvm_irq_level l;
    memset(&l, 0, sizeof l);
    l.irq = irq;
    l.level = level;
    return ioctl(vm_fd, KVM_IRQ_LINE, &l);
}

#include <sys/eventfd.h>
int brig_eventfd(void) { return eventfd(0, EFD_CLOEXEC); }
