#!/bin/sh
# Builds brig-agent's guest initramfs: make-agent-initramfs.sh OUT [--rootfs DIR] [--agent BIN] [--kernel VERSION | --no-modules]
#   /init                 brig-agent (static, stripped; default .build/release/brig-agent, built if missing)
#   /lib/modules/*.ko     the virtio/vsock modules the kernel has as modules, and their dependencies
#   /lib/modules/brig.order  load order (dependencies first), read by GuestInit.loadModules
#   /rootfs               optional: a rootfs directory (e.g. .cache/rootfs from make-rootfs.sh)
# Output is a gzip'd newc cpio with fixed mtimes and owners, so equal inputs give equal bytes.
# The kernel defaults to the newest /boot/vmlinuz-*-cloud-amd64 (Debian linux-image-cloud-amd64).
# --no-modules: for a kernel with everything built in (scripts/build-guest-kernel.sh's); the
# initramfs then has an empty brig.order and the agent loads nothing.
set -eu
out=${1:?usage: make-agent-initramfs.sh OUT [--rootfs DIR] [--agent BIN] [--kernel VERSION | --no-modules]}
shift
rootfs="" agent="" kver="" nomods=0
while [ $# -gt 0 ]; do
  case "$1" in
    --rootfs) rootfs=$2; shift 2 ;;
    --agent) agent=$2; shift 2 ;;
    --kernel) kver=$2; shift 2 ;;
    --no-modules) nomods=1; shift ;;
    *) echo "make-agent-initramfs: unknown argument $1" >&2; exit 2 ;;
  esac
done
here=$(cd "$(dirname "$0")/.." && pwd)
if [ "$nomods" = 1 ]; then
  kver="(built-in)"
elif [ -z "$kver" ]; then
  kver=$(ls /boot | sed -n 's/^vmlinuz-\(.*-cloud-amd64\)$/\1/p' | sort -V | tail -1)
  [ -n "$kver" ] || { echo "make-agent-initramfs: no /boot/vmlinuz-*-cloud-amd64 (apt-get install linux-image-cloud-amd64)" >&2; exit 1; }
fi
if [ -z "$agent" ]; then
  agent=$here/.build/release/brig-agent
  [ -x "$agent" ] || (cd "$here" && swift build -c release --product brig-agent >&2)
fi
[ -x "$agent" ] || { echo "make-agent-initramfs: $agent missing" >&2; exit 1; }

# Modules brig's guest needs; the ones builtin (=y) in this kernel are simply not in modules.dep.
wanted="virtio_pci virtio_mmio virtio_blk virtio_console vmw_vsock_virtio_transport"
mods=/lib/modules/$kver
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/lib/modules" "$stage/dev" "$stage/proc" "$stage/sys" "$stage/run" "$stage/tmp"
: > "$stage/lib/modules/brig.order"
if [ "$nomods" = 0 ] && [ -f "$mods/modules.dep" ]; then
  # modules.dep: "path: dep1 dep2 …", where each dep needs the ones after it: load right to left.
  for m in $wanted; do
    line=$(grep -E "/$m\.ko(\.xz|\.zst|\.gz)?:" "$mods/modules.dep" || true)
    [ -n "$line" ] || continue
    for p in $(echo "$line" | tr -d ':' | awk '{ for (i = NF; i > 1; i--) print $i; print $1 }'); do
      name=$(basename "$p"); name=${name%.xz}; name=${name%.zst}; name=${name%.gz}
      grep -qx "/lib/modules/$name" "$stage/lib/modules/brig.order" && continue
      case "$p" in
        *.xz) xz -dc "$mods/$p" > "$stage/lib/modules/$name" ;;
        *.zst) zstd -qdc "$mods/$p" > "$stage/lib/modules/$name" ;;
        *.gz) gzip -dc "$mods/$p" > "$stage/lib/modules/$name" ;;
        *) cp "$mods/$p" "$stage/lib/modules/$name" ;;
      esac
      echo "/lib/modules/$name" >> "$stage/lib/modules/brig.order"
    done
  done
fi
cp "$agent" "$stage/init"
# The symbol table is ~40% of a static Swift binary and the guest copies /init once more.
if command -v strip >/dev/null; then strip "$stage/init"; fi
chmod 0755 "$stage/init"
if [ -n "$rootfs" ]; then
  mkdir -p "$stage/rootfs"
  cp -a "$rootfs/." "$stage/rootfs/"
fi
tmp=$out.tmp.$$
find "$stage" -exec touch -h -d @0 {} +
(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 --reproducible) | gzip -n -1 > "$tmp"
mv "$tmp" "$out"
echo "make-agent-initramfs: $out (kernel $kver, modules: $(tr '\n' ' ' < "$stage/lib/modules/brig.order"))" >&2
