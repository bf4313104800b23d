#!/bin/sh
# The conformance suite (conformance/run) against brig's microvm backend over the real KVM
# transport, inside the VM test host (nested SVM under QEMU TCG: every VM boot takes seconds, so
# every timeout is scaled by --time-scale).
#
#   e2e/vmhost/microvm-conformance.sh [--out DIR] [CASE…]      # on the host
#
# Prints the suite's TAP (one line per case) and its summary; with --out DIR the per-case
# results land in DIR/microvm-kvm.json ({case: [status, reason]}). Exit status: the suite's.
set -u
if [ "${1:-}" != --in-vm ]; then
  here=$(cd "$(dirname "$0")" && pwd)
  out=""
  if [ "${1:-}" = --out ]; then out=$2; shift 2; fi
  guest=$(sh "$here/microvm-guest.sh") || exit 2
  exec sh "$here/run" --modules kvm_amd --copy "$guest" ${out:+--out "$out"} -- sh e2e/vmhost/microvm-conformance.sh --in-vm "$@"
fi
shift
G=/work/repo/.cache/microvm-guest
export BRIG_VM_KERNEL=$G/vmlinux BRIG_VM_INITRD=$G/agent.initrd
start=$(date +%s)
python3 conformance/run --runtime /work/repo/.build/release/brig --backend microvm --time-scale 6 \
  --json /work/out/microvm-kvm.json "$@"
rc=$?
echo "# conformance under microvm+KVM: $(( $(date +%s) - start )) s in the VM test host"
exit $rc
