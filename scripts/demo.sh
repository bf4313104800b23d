#!/bin/sh
# One command for a newcomer: installs what is needed, builds brig (release, static), makes a
# busybox-static bundle, and runs a container that prints from inside it.
set -eu
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo.sh: run as root (containers need it)" >&2; exit 1; }
./scripts/install-deps.sh
swift build -c release --product brig
brig=$(pwd)/.build/release/brig
bundle=$(pwd)/.cache/demo
./scripts/make-rootfs.sh "$bundle/rootfs"
rm -f "$bundle/config.json"
"$brig" spec --bundle "$bundle"
# Non-interactive: no terminal, and a command that shows where it runs.
sed -i 's/"terminal" : true/"terminal" : false/' "$bundle/config.json"
sed -i 's|^\( *\)"sh"$|\1"sh", "-c", "echo hello from inside brig container $(hostname): pid $$, uid $(id -u), $(ls / \| wc -l) entries in /"|' "$bundle/config.json"
"$brig" --root /run/brig-demo delete --force demo >/dev/null 2>&1 || true
echo "+ brig run --bundle $bundle demo"
"$brig" --root /run/brig-demo run --bundle "$bundle" demo
echo "+ exit status $?"
# The same bundle with the microvm backend: in a real VM where VMX/SVM and the guest exist
# (scripts/install-guest.sh), otherwise over the host-agent transport (no VM; docs/microvm.md).
swift build -c release --product brig-agent
"$brig" --root /run/brig-demo delete --force demo-vm >/dev/null 2>&1 || true
if grep -qE '\b(vmx|svm)\b' /proc/cpuinfo && [ -r /usr/lib/brig/vmlinuz ] && [ -r /usr/lib/brig/brig-agent.initrd ]; then
  echo "+ brig --backend microvm run --bundle $bundle demo-vm"
  "$brig" --root /run/brig-demo --backend microvm run --bundle "$bundle" demo-vm
else
  echo "(no VMX/SVM or no installed guest: the microvm backend runs over its host-agent transport)"
  echo "+ BRIG_MICROVM_TRANSPORT=host-agent brig --backend microvm run --bundle $bundle demo-vm"
  BRIG_MICROVM_TRANSPORT=host-agent BRIG_AGENT="$(pwd)/.build/release/brig-agent" \
    "$brig" --root /run/brig-demo --backend microvm run --bundle "$bundle" demo-vm
fi
echo "+ exit status $?"
