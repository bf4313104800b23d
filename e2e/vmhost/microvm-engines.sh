#!/bin/sh
# containerd 1.6 (the runc shim with --runc-binary, as containerd's BinaryName) driving brig with
# the microvm backend under KVM: in the VM test host's systemd layout (it has containerd, podman
# and expect) with kvm_amd, e2e/engines/containerd.sh's checks — run and exit codes, a detached
# task, exec and its exit code, ps, kill TERM/KILL, a tty through expect — each container a VM
# with brig's guest kernel and brig-agent; then no VMM or state may be left.
#   e2e/vmhost/microvm-engines.sh [run options, e.g. --timeout 1200]
# (CI runs it inside e2e/vmhost/systemd.sh's VM, with --in-vm.)
set -u
if [ "${1:-}" != --in-vm ]; then
  here=$(cd "$(dirname "$0")" && pwd)
  guest=$(sh "$here/microvm-guest.sh") || exit 2
  exec sh "$here/run" --layout systemd --modules kvm_amd --copy "$guest" "$@" -- "sh e2e/vmhost/microvm-engines.sh --in-vm"
fi
# The image's mawk has no /usr/bin/awk alternative (packages are unpacked, not configured).
command -v awk >/dev/null || { mkdir -p /usr/local/bin && ln -s "$(command -v mawk)" /usr/local/bin/awk; }
G=/work/repo/.build/microvm-guest
export BRIG_VM_KERNEL=$G/vmlinux BRIG_VM_INITRD=$G/agent.initrd
# Each container boots a VM here, inside an emulated host: seconds, not milliseconds.
export BRIG=/work/repo/.build/release/brig BRIG_MICROVM_TRANSPORT=kvm ENGINE_WAIT_TRIES=600 ENGINE_TTY_TIMEOUT=180
sh e2e/engines/containerd.sh "$(pwd)/e2e/engines/brig-microvm"; rc=$?
# The shim ran brig with its default root (/run/containerd/runc/<namespace>): no VMM may be left.
mons=$(for p in /proc/[0-9]*; do tr '\0' ' ' 2>/dev/null < "$p/cmdline" | grep "vm-monitor"; done)
if [ -z "$mons" ]; then echo "ok - no VMM left"; else echo "not ok - no VMM left: $mons"; rc=1; fi
exit $rc
