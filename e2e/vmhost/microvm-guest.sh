#!/bin/sh
# Prepares brig's microvm guest for the VM test host (e2e/vmhost/run --copy), in
# .build/microvm-guest/, and prints that path (relative to the repo):
#   vmlinux        brig's guest kernel (scripts/build-guest-kernel.sh, already built: this never
#                  builds a kernel; either PVM flavour)
#   kernelrelease  its `uname -r`
#   agent.initrd   make-agent-initramfs.sh --no-modules with .build/release/brig-agent
#   slow.initrd    agent.initrd plus /slow-init, which sleeps $SLOW_INIT_DELAY seconds (default 20)
#                  before it execs the agent: with `rdinit=/slow-init` a guest that comes up late
# Needs .build/release/brig-agent (swift build -c release --product brig-agent).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=$repo/.build/microvm-guest   # per worktree: concurrent runs of other trees never swap in their agent
delay=${SLOW_INIT_DELAY:-20}
vmlinux=$(PVM_HOST=0 sh "$repo/scripts/build-guest-kernel.sh" --cached 2>/dev/null ||
          PVM_HOST=1 sh "$repo/scripts/build-guest-kernel.sh" --cached 2>/dev/null) ||
  { echo "microvm-guest: no guest kernel in .cache/kernel (scripts/build-guest-kernel.sh)" >&2; exit 2; }
agent=$repo/.build/release/brig-agent
[ -x "$agent" ] || { echo "microvm-guest: $agent missing (swift build -c release --product brig-agent)" >&2; exit 2; }
mkdir -p "$out"
cp "$vmlinux" "$out/vmlinux.tmp" && mv "$out/vmlinux.tmp" "$out/vmlinux"
cp "$(dirname "$vmlinux")/kernelrelease" "$out/kernelrelease"
sh "$repo/scripts/make-agent-initramfs.sh" "$out/agent.initrd.tmp" --agent "$agent" --no-modules
mv "$out/agent.initrd.tmp" "$out/agent.initrd"

# The slow guest: a second (uncompressed) cpio appended to the agent's; the kernel unpacks both.
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin"
cp /bin/busybox "$stage/bin/busybox"
printf '#!/bin/busybox sh\n/bin/busybox sleep %s\nexec /init\n' "$delay" > "$stage/slow-init"
chmod 0755 "$stage/slow-init"
(cd "$stage" && find bin slow-init | sort | cpio --quiet -o -H newc -R 0:0) > "$stage/extra.cpio"
# The kernel looks for a cpio header only at 4-byte-aligned offsets: pad the gzip'd part with zeros.
size=$(wc -c < "$out/agent.initrd")
{ cat "$out/agent.initrd"; head -c $(( (512 - size % 512) % 512 )) /dev/zero; cat "$stage/extra.cpio"; } > "$out/slow.initrd.tmp"
mv "$out/slow.initrd.tmp" "$out/slow.initrd"   # (files are replaced whole: a concurrent --copy never sees half of one)
echo "${out#"$repo"/}"
