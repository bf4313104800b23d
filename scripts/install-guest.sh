#!/bin/sh
# Builds and installs the microvm backend's guest (docs/microvm.md):
#   $DEST/vmlinuz            brig's kernel from scripts/build-guest-kernel.sh: the uncompressed
#                            vmlinux (ELF with a PVH note; brig's VMM enters it directly, no
#                            decompressor; everything brig needs is built in, no modules)
#   $DEST/brig-agent.initrd  scripts/make-agent-initramfs.sh --no-modules with the release
#                            brig-agent as /init
# DEST defaults to /usr/lib/brig. Idempotent: the kernel build is cached (.cache/kernel/), the
# agent build is incremental, and a file is only replaced when its bytes change.
#   PVM_HOST=0|1  kernel flavour (default: 1 on a PVM host, i.e. /sys/module/kvm_pvm exists;
#                 see build-guest-kernel.sh)
#   AGENT=BIN     use this brig-agent instead of building .build/release/brig-agent
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEST=${DEST:-/usr/lib/brig}
if [ -z "${PVM_HOST:-}" ]; then
  if [ -d /sys/module/kvm_pvm ]; then PVM_HOST=1; else PVM_HOST=0; fi
fi

echo "install-guest: kernel (PVM_HOST=$PVM_HOST; a first build takes minutes)" >&2
vmlinux=$(PVM_HOST=$PVM_HOST sh "$ROOT/scripts/build-guest-kernel.sh" | tail -n 1)
[ -f "$vmlinux" ] || { echo "install-guest: kernel build gave no vmlinux" >&2; exit 1; }

agent=${AGENT:-}
if [ -z "$agent" ]; then
  echo "install-guest: swift build -c release --product brig-agent" >&2
  (cd "$ROOT" && swift build -c release --product brig-agent >&2)
  agent=$ROOT/.build/release/brig-agent
fi
[ -x "$agent" ] || { echo "install-guest: $agent missing" >&2; exit 1; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
# The initramfs is reproducible (fixed mtimes/owners), so an unchanged agent gives equal bytes.
sh "$ROOT/scripts/make-agent-initramfs.sh" "$stage/initrd" --agent "$agent" --no-modules

mkdir -p "$DEST"
put() { # put SRC NAME WHAT
  if cmp -s "$1" "$DEST/$2"; then
    echo "unchanged  $DEST/$2"
  else
    cp "$1" "$DEST/.$2.tmp" && chmod 0644 "$DEST/.$2.tmp" && mv "$DEST/.$2.tmp" "$DEST/$2"
    echo "installed  $DEST/$2  ($(wc -c < "$DEST/$2") bytes, $3)"
  fi
}
release=$(cat "$(dirname "$vmlinux")/kernelrelease" 2>/dev/null || echo '?')
put "$vmlinux" vmlinuz "Linux $release vmlinux (PVH) from $vmlinux"
put "$stage/initrd" brig-agent.initrd "initramfs, /init = $agent"
