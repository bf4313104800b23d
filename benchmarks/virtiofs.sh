#!/bin/sh
# virtio-fs (brig's VMM serving a bind mount) against the same directory read directly:
#   - read of a 100 MiB file (cat > /dev/null): the host's page cache is warm for both; in the
#     guest the first read goes through FUSE (the guest's own cache is cold);
#   - stat of 10,000 files (ls -ln: a readdir and an lstat each);
#   - write of 50 MiB (dd bs=1M) into a read-write bind;
# virtio-fs twice: READ/WRITE payloads straight to and from guest memory (the default) and with
# BRIG_VIRTIOFS_BOUNCE=1 (through the device's buffer, as before).
# Each is timed inside the place that does it (/proc/uptime, 10 ms resolution) and reported as
# milliseconds and the ratio virtio-fs / direct.
#   benchmarks/virtiofs.sh --vmhost [RUNS]   # in the VM test host (kvm_amd: nested SVM under
#                                            # QEMU TCG; everything is emulated, only the ratios
#                                            # mean anything); needs the guest kernel with VIRTIO_FS
set -eu
cd "$(dirname "$0")/.."
mode=${1:---vmhost}
runs=${2:-3}
[ "$mode" = --vmhost ] || [ "$mode" = --in-vm ] || { echo "usage: benchmarks/virtiofs.sh --vmhost [RUNS]" >&2; exit 2; }
if [ "$mode" = --vmhost ]; then
  swift build -c release --product brig >/dev/null
  swift build -c release --product brig-agent >/dev/null
  guest=$(sh e2e/vmhost/microvm-guest.sh)
  exec sh e2e/vmhost/run --modules kvm_amd --copy "$guest" --timeout 1800 -- "sh benchmarks/virtiofs.sh --in-vm $runs"
fi

# --in-vm
G=/work/repo/.build/microvm-guest
export BRIG_VM_KERNEL=$G/vmlinux BRIG_VM_INITRD=$G/agent.initrd
brig=/work/repo/.build/release/brig
W=$(mktemp -d /tmp/vfsbench.XXXXXX)
mkdir -p "$W/data/many"
head -c $((100 << 20)) /dev/urandom > "$W/data/big"
i=0; while [ $i -lt 10000 ]; do : > "$W/data/many/f$i"; i=$((i + 1)); done
cat > "$W/probe.sh" <<'EOF'
ms() { read up _ < /proc/uptime; echo $(( ${up%.*} * 1000 + 1${up#*.} * 10 - 1000 )); }  # no awk in the VM test host
t=$(ms); cat "$1/big" > /dev/null; r=$(( $(ms) - t ))
t=$(ms); ls -ln "$1/many" > /dev/null; s=$(( $(ms) - t ))
t=$(ms); dd if=/dev/zero of="$2/written" bs=1M count=50 2>/dev/null; w=$(( $(ms) - t )); rm -f "$2/written"
echo "RESULT $r $s $w"
EOF
mkdir -p "$W/b" && cp -a /work/repo/.cache/rootfs "$W/b/rootfs" && cp "$W/probe.sh" "$W/b/rootfs/probe.sh" && (cd "$W/b" && $brig spec)
python3 - "$W/b/config.json" "$W/data" <<'PY'
import json, sys
p, d = sys.argv[1], sys.argv[2]
s = json.load(open(p))
s["process"]["terminal"] = False
s["process"]["args"] = ["sh", "/probe.sh", "/data", "/out"]
s["root"]["readonly"] = False  # /data is created in the image
s["linux"]["resources"] = {"memory": {"limit": 256 << 20}}
s["mounts"].append({"destination": "/data", "type": "bind", "source": d, "options": ["rbind", "ro"]})
s["mounts"].append({"destination": "/out", "type": "bind", "source": d.rsplit("/", 1)[0] + "/out", "options": ["rbind", "rw"]})
json.dump(s, open(p, "w"))
PY
mkdir -p "$W/out"
cat "$W/data/big" > /dev/null
# vm NAME [ENV…]: the probe in a microvm container; prints its RESULT fields.
vm() { name=$1; shift; env "$@" $brig --root /run/brig-vfsbench --backend microvm run --bundle "$W/b" "$name" 2>&1 | tee "$W/out.log" | sed -n 's/^RESULT //p'; }
n=0
while [ $n -lt "$runs" ]; do
  n=$((n + 1))
  host=$(sh "$W/probe.sh" "$W/data" "$W/out" | sed -n 's/^RESULT //p')
  # Which goes first alternates (the later of two runs is often slower on the loaded host).
  if [ $((n % 2)) = 1 ]; then direct=$(vm "vb$n"); bounce=$(vm "vbb$n" BRIG_VIRTIOFS_BOUNCE=1)
  else bounce=$(vm "vbb$n" BRIG_VIRTIOFS_BOUNCE=1); direct=$(vm "vb$n"); fi
  [ -n "$direct" ] && [ -n "$bounce" ] || { tail -20 "$W/out.log"; exit 1; }
  python3 -c 'import sys
h, d, b = (list(map(int, a.split())) for a in sys.argv[1:4])
r = lambda a, b: a / b if b else 0
for i, what in enumerate(["read 100 MiB", "stat 10,000", "write 50 MiB"]):
    print(f"run {sys.argv[4]}: {what}: host {h[i]} ms, virtio-fs {d[i]} ms ({r(d[i], h[i]):.1f}x), with the bounce buffer {b[i]} ms ({r(b[i], h[i]):.1f}x)")' \
    "$host" "$direct" "$bounce" "$n"
done
rm -rf "$W"
