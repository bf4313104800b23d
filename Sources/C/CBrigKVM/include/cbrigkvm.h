#ifndef CBRIGKVM_H
#define CBRIGKVM_H
// Thin C view of <linux/kvm.h> for Swift: ioctl numbers (function-like macros do not
// import), a non-variadic ioctl, and kvm_run union accessors.
#include <linux/kvm.h>
#include <stdint.h>

int brig_kvm_ioctl(int fd, unsigned long request, void *arg);
int brig_kvm_ioctl_val(int fd, unsigned long request, unsigned long arg);
int brig_kvm_irq_line(int vm_fd, uint32_t irq, int level);
// eventfd(0, EFD_CLOEXEC) (sys/eventfd.h does not import into Swift's Glibc module).
int brig_eventfd(void);

static inline unsigned long brig_KVM_GET_API_VERSION(void) { return KVM_GET_API_VERSION; }
static inline unsigned long brig_KVM_CREATE_VM(void) { return KVM_CREATE_VM; }
static inline unsigned long brig_KVM_CHECK_EXTENSION(void) { return KVM_CHECK_EXTENSION; }
static inline unsigned long brig_KVM_GET_VCPU_MMAP_SIZE(void) { return KVM_GET_VCPU_MMAP_SIZE; }
static inline unsigned long brig_KVM_GET_SUPPORTED_CPUID(void) { return KVM_GET_SUPPORTED_CPUID; }
static inline unsigned long brig_KVM_CREATE_VCPU(void) { return KVM_CREATE_VCPU; }
static inline unsigned long brig_KVM_SET_USER_MEMORY_REGION(void) { return KVM_SET_USER_MEMORY_REGION; }
static inline unsigned long brig_KVM_SET_TSS_ADDR(void) { return KVM_SET_TSS_ADDR; }
static inline unsigned long brig_KVM_SET_IDENTITY_MAP_ADDR(void) { return KVM_SET_IDENTITY_MAP_ADDR; }
static inline unsigned long brig_KVM_CREATE_IRQCHIP(void) { return KVM_CREATE_IRQCHIP; }
static inline unsigned long brig_KVM_CREATE_PIT2(void) { return KVM_CREATE_PIT2; }
static inline unsigned long brig_KVM_RUN(void) { return KVM_RUN; }
static inline unsigned long brig_KVM_GET_REGS(void) { return KVM_GET_REGS; }
static inline unsigned long brig_KVM_SET_REGS(void) { return KVM_SET_REGS; }
static inline unsigned long brig_KVM_GET_SREGS(void) { return KVM_GET_SREGS; }
static inline unsigned long brig_KVM_SET_SREGS(void) { return KVM_SET_SREGS; }
static inline unsigned long brig_KVM_SET_FPU(void) { return KVM_SET_FPU; }
static inline unsigned long brig_KVM_SET_MSRS(void) { return KVM_SET_MSRS; }
static inline unsigned long brig_KVM_SET_CPUID2(void) { return KVM_SET_CPUID2; }
static inline unsigned long brig_KVM_SET_LAPIC(void) { return KVM_SET_LAPIC; }
static inline unsigned long brig_KVM_GET_LAPIC(void) { return KVM_GET_LAPIC; }

static inline unsigned int brig_KVM_CAP_IRQCHIP(void) { return KVM_CAP_IRQCHIP; }
static inline unsigned int brig_KVM_CAP_USER_MEMORY(void) { return KVM_CAP_USER_MEMORY; }
static inline unsigned int brig_KVM_CAP_EXT_CPUID(void) { return KVM_CAP_EXT_CPUID; }
static inline unsigned int brig_KVM_CAP_PIT2(void) { return KVM_CAP_PIT2; }
static inline unsigned int brig_KVM_CAP_IMMEDIATE_EXIT(void) { return KVM_CAP_IMMEDIATE_EXIT; }

// kvm_run accessors.
static inline uint32_t brig_run_exit_reason(const struct kvm_run *r) { return r->exit_reason; }
static inline void brig_run_set_immediate_exit(struct kvm_run *r, uint8_t v) { r->immediate_exit = v; }
static inline uint8_t brig_run_io_direction(const struct kvm_run *r) { return r->io.direction; }
static inline uint8_t brig_run_io_size(const struct kvm_run *r) { return r->io.size; }
static inline uint16_t brig_run_io_port(const struct kvm_run *r) { return r->io.port; }
static inline uint32_t brig_run_io_count(const struct kvm_run *r) { return r->io.count; }
static inline uint64_t brig_run_io_data_offset(const struct kvm_run *r) { return r->io.data_offset; }
static inline uint64_t brig_run_mmio_addr(const struct kvm_run *r) { return r->mmio.phys_addr; }
static inline uint8_t *brig_run_mmio_data(struct kvm_run *r) { return r->mmio.data; }
static inline uint32_t brig_run_mmio_len(const struct kvm_run *r) { return r->mmio.len; }
static inline uint8_t brig_run_mmio_is_write(const struct kvm_run *r) { return r->mmio.is_write; }
static inline uint64_t brig_run_fail_entry_reason(const struct kvm_run *r) { return r->fail_entry.hardware_entry_failure_reason; }
static inline uint32_t brig_run_internal_suberror(const struct kvm_run *r) { return r->internal.suberror; }
static inline uint32_t brig_run_internal_ndata(const struct kvm_run *r) { return r->internal.ndata; }
static inline uint64_t brig_run_internal_data(const struct kvm_run *r, uint32_t i) { return i < 16 ? r->internal.data[i] : 0; }
static inline uint32_t brig_run_system_event_type(const struct kvm_run *r) { return r->system_event.type; }
#endif
