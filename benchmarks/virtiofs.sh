#!/bin/sh
# virtio-fs (brig's VMM serving a bind mount) against the same directory read directly:
#   - read of a 100 MiB file (cat > /dev/null): the host's page cache is warm for both; in the
#     guest the first read goes through FUSE (the guest's own cache is cold);
#   - stat of 10,000 files (ls -ln: a readdir and an lstat each).
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
echo "RESULT $r $s"
EOF
mkdir -p "$W/b" && cp -a /work/repo/.cache/rootfs "$W/b/rootfs" && cp "$W/probe.sh" "$W/b/rootfs/probe.sh" && (cd "$W/b" && $brig spec)
python3 - "$W/b/config.json" "$W/data" <<'PY'
import json, sys
p, d = sys.argv[1], sys.argv[2]
s = json.load(open(p))
s["process"]["terminal"] = False
s["process"]["args"] = ["sh", "/probe.sh", "/data"]
s["root"]["readonly"] = False  # /data is created in the image
s["linux"]["resources"] = {"memory": {"limit": 256 << 20}}
s["mounts"].append({"destination": "/data", "type": "bind", "source": d, "options": ["rbind", "ro"]})
json.dump(s, open(p, "w"))
PY
cat "$W/data/big" > /dev/null
n=0
while [ $n -lt "$runs" ]; do
  n=$((n + 1))
  set -- $(sh "$W/probe.sh" "$W/data" | sed -n 's/^RESULT //p')
  hr=${1:-0} hs=${2:-0}
  set -- $($brig --root /run/brig-vfsbench --backend microvm run --bundle "$W/b" "vb$n" 2>&1 | tee "$W/out" | sed -n 's/^RESULT //p') 0 0
  vr=${1:-0} vs=${2:-0}
  [ "$vr" != 0 ] || { tail -20 "$W/out"; exit 1; }
  python3 -c 'import sys; hr, vr, hs, vs = map(int, sys.argv[1:5]); r = lambda a, b: a / b if b else 0
print(f"run {sys.argv[5]}: read 100 MiB host {hr} ms, virtio-fs {vr} ms ({r(vr, hr):.1f}x); stat 10,000 host {hs} ms, virtio-fs {vs} ms ({r(vs, hs):.1f}x)")' \
    "$hr" "$vr" "$hs" "$vs" "$n"
done
rm -rf "$W"
