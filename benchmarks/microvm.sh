#!/bin/sh
# microvm backend benchmark, side by side in one run:
#   - create → agent ready (the monitor's own measurement, <state>/<id>/timing)
#   - `run` of /bin/true: microvm vs namespaces backend
#   - VMM process RSS with a running container, with free page reporting and without
#   - brig's VMM (`brig vm boot`) vs QEMU microvm booting the same kernel + agent initramfs to
#     the agent's power-off (the agent is given a transport that cannot open, so right after
#     bring-up it exits and PID 1 powers off through port 0xF4: the whole boot, no container);
#     QEMU twice: as it was measured before brig had virtio-rng (no entropy device), and with a
#     virtio-rng-device like brig's (the guest then seeds its random pool at once)
#   BOOT_ONLY=1 measures only that boot comparison (and its RSS).
# Needs hardware virtualization (vmx/svm): on other hosts (e.g. PVM's /dev/kvm, where Linux user
# space cannot run) it says so and measures only the host-agent transport (no VM: protocol + agent
# overhead), clearly labelled.
#   benchmarks/microvm.sh [RUNS]             # here (builds the release binaries)
#   benchmarks/microvm.sh --vmhost [RUNS]    # inside the VM test host (e2e/vmhost/run with
#                                            # kvm_amd: nested SVM under QEMU TCG; everything is
#                                            # emulated there, only the ratios mean anything)
# Inside, BRIG / BRIG_AGENT name prebuilt binaries (no swift build) and BRIG_VM_KERNEL /
# BRIG_VM_INITRD the guest (default: scripts/install-guest.sh's /usr/lib/brig).
set -eu
cd "$(dirname "$0")/.."
if [ "${1:-}" = --vmhost ]; then
  shift
  swift build -c release --product brig >/dev/null
  swift build -c release --product brig-agent >/dev/null
  guest=$(sh e2e/vmhost/microvm-guest.sh)
  exec sh e2e/vmhost/run --modules kvm_amd --copy "$guest" --copy .build/release/brig-agent -- \
    "BRIG=/work/repo/.build/release/brig BRIG_AGENT=/work/repo/.build/release/brig-agent" \
    "BRIG_VM_KERNEL=/work/repo/$guest/vmlinux BRIG_VM_INITRD=/work/repo/$guest/agent.initrd" \
    "BOOT_ONLY=${BOOT_ONLY:-} sh benchmarks/microvm.sh ${1:-5}"
fi
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
runs=${1:-${RUNS:-20}}
if [ -z "${BRIG:-}" ]; then
  swift build -c release --product brig >/dev/null
  swift build -c release --product brig-agent >/dev/null
fi
brig=${BRIG:-$(pwd)/.build/release/brig}
agent=${BRIG_AGENT:-$(pwd)/.build/release/brig-agent}
work=$(mktemp -d /tmp/brig-mvbench-XXXXXX)
trap 'rm -rf "$work"' EXIT
if [ -x .cache/rootfs/bin/busybox ]; then mkdir -p "$work/bundle" && cp -a .cache/rootfs "$work/bundle/rootfs"
else ./scripts/make-rootfs.sh "$work/bundle/rootfs" >/dev/null; fi
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
  export BRIG_VM_KERNEL=$kernel BRIG_VM_INITRD=$initrd
  if [ -z "${BOOT_ONLY:-}" ]; then
  hyperfine -N --runs "$runs" --warmup 1 --export-json "$work/run.json" \
    -n "namespaces run" "$brig --root $work/s1 run --bundle $b n" \
    -n "microvm run" "$brig --root $work/s2 --backend microvm run --bundle $b m" >/dev/null
  # create → agent ready, and the VMM's RSS while the container runs.
  python3 - "$work/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p)); c["process"]["args"] = ["/bin/sleep", "1000"]; json.dump(c, open(p, "w"))
PY
  # With free page reporting (the default) and without it, alternating; RSS taken 5 s after
  # `run -d` returned (the guest reports what it freed ~2 s after freeing it).
  for i in $(seq 1 3); do
    for fpr in 1 0; do
      BRIG_VM_FREE_PAGE_REPORTING=$fpr "$brig" --root "$work/s3" --backend microvm run -d --bundle "$b" r$i
      sleep 5
      pid=$("$brig" --root "$work/s3" state r$i | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
      python3 benchmarks/vmm-memory.py --json --pid "$pid" >> "$work/rss$fpr"
      grep agent-ready-ms "$work/s3/r$i/timing" | cut -d= -f2 >> "$work/ready"
      "$brig" --root "$work/s3" delete --force r$i
    done
  done
  fi
  # Same kernel + initramfs to the agent's power-off: brig's VMM vs QEMU microvm. The guest
  # exits with status 1 (the agent's, through port 0xF4): -i accepts it.
  cmdline="console=ttyS0 reboot=k panic=-1 pci=off quiet brig.transport=serial:/dev/nonexistent brig.exitport"
  # The agent's power-off line carries the guest's uptime (its monotonic clock), printed beside each
  # VMM's time. It is not a clean split of the boot into the guest's part and the VMM's: early in
  # boot the guest's clock advances by ticks that depend on the interrupt set-up the VMM gives it
  # (brig's VMM with an MP table read ~400 ms less uptime for the same wall time, interleaved in
  # the VM test host), so no "VMM's own part" is derived from it. Each run's prepare step collects
  # the previous run's figure (harvest NAME; the last run's is collected after hyperfine).
  harvest() { echo "sh -c 'grep -ao \"guest uptime [0-9]*\" $work/$1.console >> $work/$1.uptime; rm -f $work/$1.console; true'"; }
  set -- -n brig -p "$(harvest brig)" "$brig vm boot --kernel $kernel --initrd $initrd --mem 256M --cmdline '$cmdline' --serial-out $work/brig.console"
  if command -v qemu-system-x86_64 >/dev/null; then
    # acpi=off: brig's guest kernel has no ACPI, and QEMU microvm only names its virtio-mmio
    # devices on the kernel command line (virtio_mmio.device=) when ACPI is off; with ACPI on,
    # the guest never saw the virtio-rng-device (its random pool waited ~1 s, as with none).
    qemu="qemu-system-x86_64 -M microvm,rtc=off,acpi=off -enable-kvm -cpu host -m 256M -nodefaults -no-user-config -display none -device isa-debug-exit,iobase=0xf4,iosize=0x01 -kernel $kernel -initrd $initrd -append '$cmdline' -no-reboot"
    set -- "$@" -n qemu -p "$(harvest qemu)" "$qemu -serial file:$work/qemu.console" \
      -n qemu+rng -p "$(harvest qemu-rng)" "$qemu -serial file:$work/qemu-rng.console -device virtio-rng-device"
  fi
  hyperfine -N -i --runs "$runs" --warmup 1 --export-json "$work/boot.json" "$@" >/dev/null
  for c in brig qemu qemu-rng; do [ ! -f "$work/$c.console" ] || grep -ao "guest uptime [0-9]*" "$work/$c.console" >> "$work/$c.uptime" || true; done
  grep -q "powering off" "$work/brig.console" || { echo "brig vm boot did not reach the agent's power-off:" >&2; tail -5 "$work/brig.console" >&2; }
  for c in qemu qemu-rng; do
    [ ! -f "$work/$c.console" ] || grep -q "powering off" "$work/$c.console" ||
      { echo "$c did not reach the agent's power-off:" >&2; tail -5 "$work/$c.console" >&2; }
  done
  # QEMU's RSS for the same boot, from a single run (brig's from the VMM with a container above).
  # peak_rss CMD…: runs CMD in the background and prints its peak RSS (VmHWM, KiB).
  peak_rss() {
    "$@" & p=$!; peak=0
    while kill -0 $p 2>/dev/null; do
      r=$(sed -n 's/^VmHWM:[^0-9]*\([0-9]*\).*/\1/p' /proc/$p/status 2>/dev/null || true); [ -n "$r" ] && peak=$r; sleep 0.05
    done
    wait $p || true
    echo "$peak"
  }
  qrss="" brss=""
  if command -v qemu-system-x86_64 >/dev/null; then
    qrss=$(peak_rss qemu-system-x86_64 -M microvm,rtc=off,acpi=off -enable-kvm -cpu host -m 256M -nodefaults -no-user-config -display none \
             -serial null -device isa-debug-exit,iobase=0xf4,iosize=0x01 -kernel "$kernel" -initrd "$initrd" -append "$cmdline" -no-reboot)
    brss=$(peak_rss "$brig" vm boot --kernel "$kernel" --initrd "$initrd" --mem 256M --cmdline "$cmdline" --serial-out /dev/null)
    python3 benchmarks/vmm-memory.py --json -- "$brig" vm boot --kernel "$kernel" --initrd "$initrd" --mem 256M \
      --cmdline "$cmdline" --serial-out /dev/null > "$work/bootmem"
  fi
  python3 - "$work" "$qrss" "$brss" <<'PY'
import json, os, statistics, sys
w, qrss, brss = sys.argv[1], sys.argv[2], sys.argv[3]
def med(f):
    return {r["command"]: statistics.median(r["times"]) for r in json.load(open(f"{w}/{f}.json"))["results"]}
boot_only = not os.path.exists(f"{w}/run.json")
if not boot_only:
    run = med("run")
    ns, mv = run["namespaces run"], run["microvm run"]
    print(f"  run of /bin/true   namespaces {ns*1000:9.1f} ms   microvm {mv*1000:9.1f} ms   microvm/namespaces x{mv/ns:.1f}")
boot = med("boot")
def uptime(name):
    f = f"{w}/{name.replace('+', '-')}.uptime"
    ms = [int(l.split()[-1]) for l in open(f).read().splitlines() if l.strip()] if os.path.exists(f) else []
    return (statistics.median(ms) / 1000, len(ms)) if ms else (None, 0)
b = boot["brig"]
bu = uptime("brig")
print(f"  boot to the agent's power-off   brig VMM {b*1000:9.1f} ms"
      + ("" if bu[0] is None else f"   (guest uptime at power-off {bu[0]*1000:.0f} ms, median of {bu[1]})"))
for name, label in (("qemu", "QEMU microvm (no entropy device)"), ("qemu+rng", "QEMU microvm + virtio-rng-device")):
    if name in boot:
        q, qu = boot[name], uptime(name)
        line = f"  {label:<34} {q*1000:9.1f} ms   brig/QEMU x{b/q:.2f}"
        if qu[0] is not None:
            line += f"   (guest uptime {qu[0]*1000:.0f} ms)"
        print(line)
def rss(fpr):
    return [json.loads(x) for x in open(f"{w}/rss{fpr}").read().split("\n") if x]
ready = [] if boot_only else [int(x) for x in open(f"{w}/ready").read().split()]
def mem(r):
    return (f"RSS {r['rss']/1024:.1f} MiB = guest RAM touched {r['guest']/1024:.1f} + brig's binary {(r['image'] - r['image_dirty'])/1024:.1f} "
            f"(clean page cache, shared) + the VMM's own {r['own']/1024:.1f}")
if not boot_only:
    print(f"  create → agent ready {statistics.median(ready)} ms (median of {len(ready)})")
    for fpr, label in (("1", "free page reporting"), ("0", "BRIG_VM_FREE_PAGE_REPORTING=0")):
        rs = rss(fpr)
        mid = sorted(rs, key=lambda r: r["rss"])[len(rs) // 2]
        print(f"  VMM with a running container, {label} (median of {len(rs)}): {mem(mid)}")
if qrss and brss:
    print(f"  peak RSS of that boot   brig VMM {int(brss)/1024:.1f} MiB   QEMU microvm {int(qrss)/1024:.1f} MiB   QEMU/brig x{int(qrss)/int(brss):.2f}")
    print(f"  brig VMM at its peak: {mem(json.load(open(f'{w}/bootmem')))}")
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
