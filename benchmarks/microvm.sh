#!/bin/sh
# microvm backend benchmark, side by side in one run:
#   - create → agent ready (the monitor's own measurement, <state>/<id>/timing)
#   - `run` of /bin/true: microvm vs namespaces backend
#   - VMM process RSS with a running container
#   - QEMU microvm booting the same kernel + agent initramfs to the agent's poweroff
#     (brig.ready=poweroff) vs brig's VMM doing the same (`brig vm boot`)
# Needs hardware virtualization (vmx/svm): on other hosts (e.g. PVM's /dev/kvm, where Linux user
# space cannot run) it says so and measures only the host-agent transport (no VM: protocol + agent
# overhead), clearly labelled.
#   benchmarks/microvm.sh [RUNS]
set -eu
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
runs=${1:-${RUNS:-20}}
swift build -c release --product brig >/dev/null
swift build -c release --product brig-agent >/dev/null
brig=$(pwd)/.build/release/brig
agent=$(pwd)/.build/release/brig-agent
work=$(mktemp -d /tmp/brig-mvbench-XXXXXX)
trap 'rm -rf "$work"' EXIT
./scripts/make-rootfs.sh "$work/bundle/rootfs" >/dev/null
"$brig" spec --bundle "$work/bundle"
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
json.dump(c, open(p, "w"), indent=1)
PY
b=$work/bundle
hw=no
grep -qE '\b(vmx|svm)\b' /proc/cpuinfo && [ -e /dev/kvm ] && hw=yes

echo "# microvm benchmark ($runs runs, medians) on $(uname -r), $(nproc) cores, hardware virtualization: $hw"
if [ "$hw" = yes ]; then
  kernel=${BRIG_VM_KERNEL:-/usr/lib/brig/vmlinuz}
  initrd=${BRIG_VM_INITRD:-/usr/lib/brig/brig-agent.initrd}
  [ -r "$kernel" ] && [ -r "$initrd" ] || { echo "install the guest first: scripts/install-guest.sh" >&2; exit 1; }
  hyperfine -N --runs "$runs" --warmup 2 --export-json "$work/run.json" \
    -n "namespaces run" "$brig --root $work/s1 run --bundle $b n" \
    -n "microvm run" "$brig --root $work/s2 --backend microvm run --bundle $b m" >/dev/null
  # create → agent ready, and the VMM's RSS while the container runs.
  python3 - "$work/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p)); c["process"]["args"] = ["/bin/sleep", "5"]; json.dump(c, open(p, "w"))
PY
  for i in $(seq 1 5); do
    "$brig" --root "$work/s3" --backend microvm create --bundle "$b" r$i
    pid=$("$brig" --root "$work/s3" state r$i | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
    grep VmRSS /proc/$pid/status | awk '{print $2}' >> "$work/rss"
    grep agent-ready-ms "$work/s3/r$i/timing" | cut -d= -f2 >> "$work/ready"
    "$brig" --root "$work/s3" delete --force r$i
  done
  # Same kernel + initramfs to the agent's poweroff: brig's VMM vs QEMU microvm.
  hyperfine -N --runs "$runs" --warmup 1 --export-json "$work/boot.json" \
    -n "brig vm boot" "$brig vm boot --kernel $kernel --initrd $initrd --mem 256M --cmdline 'console=ttyS0 reboot=k panic=-1 pci=off quiet brig.ready=poweroff' --serial-out /dev/null" \
    -n "qemu microvm" "qemu-system-x86_64 -M microvm,rtc=off,acpi=off -enable-kvm -cpu host -m 256M -nodefaults -no-user-config -nographic -serial null -kernel $kernel -initrd $initrd -append 'console=ttyS0 reboot=k panic=-1 pci=off quiet brig.ready=poweroff' -no-reboot" >/dev/null
  python3 - "$work" <<'PY'
import json, statistics, sys
w = sys.argv[1]
for f in ["run", "boot"]:
    for r in json.load(open(f"{w}/{f}.json"))["results"]:
        print(f"  {r['command']:<16} {statistics.median(r['times'])*1000:8.1f} ms")
rss = [int(x) for x in open(f"{w}/rss").read().split()]
ready = [int(x) for x in open(f"{w}/ready").read().split()]
print(f"  create → agent ready  {statistics.median(ready)} ms;  VMM RSS {statistics.median(rss)/1024:.1f} MiB")
PY
else
  echo "No vmx/svm on this host: the VM rows (microvm run, agent ready, VMM RSS, QEMU) are skipped."
  echo "Measuring the host-agent transport instead (monitor + agent protocol + container, no VM):"
  hyperfine -N --runs "$runs" --warmup 2 --export-json "$work/run.json" \
    -n "namespaces run" "$brig --root $work/s1 run --bundle $b n" \
    -n "microvm(host-agent) run" "env BRIG_MICROVM_TRANSPORT=host-agent BRIG_AGENT=$agent $brig --root $work/s2 --backend microvm run --bundle $b m" >/dev/null
  python3 - "$work" <<'PY'
import json, statistics, sys
w = sys.argv[1]
res = json.load(open(f"{w}/run.json"))["results"]
base = statistics.median(res[0]["times"])
for r in res:
    m = statistics.median(r["times"])
    print(f"  {r['command']:<26} {m*1000:8.1f} ms   x{m/base:5.2f}")
PY
fi
