#!/bin/sh
# Build a small x86_64 guest kernel (vmlinux with a PVH note, and a bzImage) for brig's VMM
# from Debian's linux-source-6.1. Result: .cache/kernel/<key>/{vmlinux,bzImage}; the vmlinux
# path is printed last (with --cached: printed only if already built, else exit 1).
#   apt-get install linux-source-6.1 flex bison bc libelf-dev libssl-dev
# The cache key is a hash of the option list, the patch flag and the source tarball name,
# so editing OPTIONS below rebuilds.
#
#   PVM_HOST=1  additionally skip the int3 self-test (the PVM nested-virt emulator on some
#               CI hosts cannot run int3 in a guest). Not needed on VMX/SVM hosts.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SRC_TARBALL=${SRC_TARBALL:-/usr/src/linux-source-6.1.tar.xz}
PVM_HOST=${PVM_HOST:-0}
JOBS=${JOBS:-$(nproc)}

# Options enabled on top of `make tinyconfig`. One per line. (IPv6, which brig-agent configures
# on a networked guest, comes with INET by default: olddefconfig sets IPV6=y.) HW_RANDOM_VIRTIO
# seeds the guest's random pool from the VMM's virtio-rng device (else crng init waits seconds);
# VIRTIO_BALLOON with PAGE_REPORTING reports the guest's free memory to the VMM, which gives it
# back to the host (free page reporting).
OPTIONS="
64BIT
SMP
HYPERVISOR_GUEST
PARAVIRT
PVH
KVM_GUEST
PRINTK
EARLY_PRINTK
TTY
SERIAL_8250
SERIAL_8250_CONSOLE
BLK_DEV_INITRD
BINFMT_ELF
BINFMT_SCRIPT
DEVTMPFS
DEVTMPFS_MOUNT
PROC_FS
SYSFS
TMPFS
BLOCK
BLK_DEV
VIRTIO_MENU
VIRTIO
VIRTIO_MMIO
VIRTIO_MMIO_CMDLINE_DEVICES
VIRTIO_BLK
EXT4_FS
NET
INET
IP_PNP
NETDEVICES
NET_CORE
VIRTIO_NET
UNIX
VSOCKETS
VIRTIO_VSOCKETS
OVERLAY_FS
MULTIUSER
SYSVIPC
SHMEM
NAMESPACES
UTS_NS
IPC_NS
PID_NS
NET_NS
USER_NS
CGROUPS
MEMCG
CGROUP_PIDS
SECCOMP
SECCOMP_FILTER
FUTEX
EPOLL
UNIX98_PTYS
POSIX_MQUEUE
FILE_LOCKING
KEYS
SIGNALFD
TIMERFD
EVENTFD
AIO
FHANDLE
POSIX_TIMERS
ADVISE_SYSCALLS
MEMBARRIER
RSEQ
X86_IOPL_IOPERM
PRINTK_TIME
PROC_SYSCTL
BPF_SYSCALL
CGROUP_BPF
CGROUP_SCHED
FAIR_GROUP_SCHED
CFS_BANDWIDTH
CPUSETS
CGROUP_CPUACCT
CGROUP_FREEZER
CGROUP_DEVICE
BLK_CGROUP
TIME_NS
VIRTIO_CONSOLE
FUSE_FS
VIRTIO_FS
PCI
VIRTIO_PCI
HW_RANDOM
HW_RANDOM_VIRTIO
VIRTIO_BALLOON
PAGE_REPORTING
BLK_DEV_THROTTLING
HUGETLBFS
CGROUP_HUGETLB
"
# Integer options, NAME=VALUE (the agent's serial transport is the second UART).
VALUES="
SERIAL_8250_NR_UARTS=4
SERIAL_8250_RUNTIME_UARTS=4
"

KEY=$( (echo "$OPTIONS"; echo "$VALUES"; echo "pvm=$PVM_HOST"; basename "$SRC_TARBALL") | sha256sum | cut -c1-16)
OUT="$ROOT/.cache/kernel/$KEY"
if [ -f "$OUT/vmlinux" ] && [ -f "$OUT/bzImage" ]; then echo "$OUT/vmlinux"; exit 0; fi
# --cached: only report a kernel already built (exit 1 if none), never build.
[ "${1:-}" = --cached ] && exit 1
[ -f "$SRC_TARBALL" ] || { echo "missing $SRC_TARBALL (apt-get install linux-source-6.1)" >&2; exit 2; }

WORK="$ROOT/.cache/kernel/build-$KEY"
rm -rf "$WORK"; mkdir -p "$WORK"
tar -C "$WORK" -xf "$SRC_TARBALL"
cd "$WORK"/linux-source-*

if [ "$PVM_HOST" = 1 ]; then
    # Skip the int3 self-test: the one place early boot executes int3 on purpose.
    sed -i 's/^\(\s*\)int3_selftest();/\1\/\* int3_selftest(); skipped for PVM hosts \*\//' arch/x86/kernel/alternative.c
    grep -q 'skipped for PVM hosts' arch/x86/kernel/alternative.c || { echo "int3 patch did not apply" >&2; exit 3; }
fi

make -s tinyconfig
for o in $OPTIONS; do ./scripts/config --enable "$o"; done
for v in $VALUES; do ./scripts/config --set-val "${v%%=*}" "${v#*=}"; done
make -s olddefconfig
# Kconfig silently drops an option whose dependencies are off: fail, naming every one.
missing=""
for o in $OPTIONS; do grep -q "^CONFIG_$o=y\$" .config || missing="$missing $o"; done
for v in $VALUES; do grep -q "^CONFIG_$v\$" .config || missing="$missing $v"; done
[ -z "$missing" ] || { echo "build-guest-kernel: not set after olddefconfig:$missing" >&2; exit 4; }
make -s -j"$JOBS" vmlinux bzImage
mkdir -p "$OUT"
cp vmlinux .config arch/x86/boot/bzImage "$OUT"/
make -s kernelrelease > "$OUT/kernelrelease"
cd "$ROOT"; rm -rf "$WORK"
echo "$OUT/vmlinux"
