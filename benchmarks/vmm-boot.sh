#!/bin/sh
# Boot-time benchmark: brig's VMM vs QEMU microvm (reference only) on the same test guest.
# Measures, per run, from process spawn: time to the guest's first serial byte, time to
# process exit after the guest powers off, and the VMM's max RSS (/usr/bin/time -v).
# Prints medians and QEMU/brig ratios.
#   benchmarks/vmm-boot.sh [RUNS]      (default 10; needs /dev/kvm, gcc, qemu-system-x86)
# BRIG_VMM=path overrides the brig-vmm binary (default: release build in .build-vmm, static).
# With BRIG=path (default .build/release/brig when built) it also measures `brig vm boot`: the
# same VMM inside the brig binary, as the microvm backend's monitor runs it.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${1:-10}
WORK=$(mktemp -d /tmp/brig-bench-XXXXXX)
trap 'rm -rf "$WORK"' EXIT

if [ -z "${BRIG_VMM:-}" ]; then
    (cd "$ROOT" && swift build -c release --scratch-path .build-vmm --product brig-vmm >/dev/null)
    BRIG_VMM="$ROOT/.build-vmm/release/brig-vmm"
fi
sh "$ROOT/Tests/VMM/Guests/build.sh" "$WORK/guest.elf"
python3 -c "import sys; open(sys.argv[1],'wb').write(b'BRIGDISK'+bytes((1<<20)-8))" "$WORK/disk.img"
cp "$WORK/disk.img" "$WORK/disk-qemu.img"

# QEMU: microvm, virtio-mmio v2, isa-debug-exit on brig's power-off port (exit = 2N+1).
# "-cpu host,-arch-capabilities": PVM hosts reject MSR 0x10a that "-cpu host" would set.
QEMU_CPU=${QEMU_CPU:-host,-arch-capabilities}

BRIG=${BRIG:-$ROOT/.build/release/brig}
python3 - "$RUNS" "$BRIG_VMM" "$WORK" "$QEMU_CPU" "$BRIG" <<'PY'
import os, subprocess, sys, time, statistics
runs, brig, work, qcpu, brig_cli = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
boot = ["boot", "--kernel", f"{work}/guest.elf", "--disk", f"{work}/disk.img",
        "--mem", "128M", "--cmdline", "console=ttyS0", "--timeout", "60"]
cmds = {
    "brig": [brig] + boot,
    "qemu": ["qemu-system-x86_64", "-M", "microvm,rtc=off,acpi=off", "-enable-kvm", "-cpu", qcpu,
             "-m", "128M", "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio",
             "-kernel", f"{work}/guest.elf", "-append", "console=ttyS0",
             "-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-global", "virtio-mmio.force-legacy=false",
             "-drive", f"id=d0,file={work}/disk-qemu.img,format=raw,if=none", "-device", "virtio-blk-device,drive=d0"],
}
if os.access(brig_cli, os.X_OK):
    cmds["brig vm"] = [brig_cli, "vm"] + boot
ok_status = {"brig": 0, "brig vm": 0, "qemu": 1}
def one(name):
    tv = f"{work}/time.txt"
    t0 = time.monotonic()
    p = subprocess.Popen(["/usr/bin/time", "-v", "-o", tv] + cmds[name], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    first = p.stdout.read(1)
    t1 = time.monotonic()
    rest = p.stdout.read()
    rc = p.wait()
    t2 = time.monotonic()
    out = (first + rest).decode(errors="replace")
    if rc != ok_status[name] or "virtio-blk ok" not in out:
        sys.exit(f"{name} run failed (exit {rc}):\n{out}")
    rss = next(int(l.split(":")[1]) for l in open(tv) if "Maximum resident set size" in l)
    return (t1 - t0) * 1000, (t2 - t0) * 1000, rss
res = {}
for name in cmds:
    try:
        samples = [one(name) for _ in range(runs)]
    except (SystemExit, FileNotFoundError) as e:
        print(f"{name}: not measured: {e}"); continue
    res[name] = [statistics.median(s[i] for s in samples) for i in range(3)]
print(f"runs per VMM: {runs} (medians); guest: Tests/VMM/Guests/blk-guest.c (serial + virtio-blk rw + power-off)")
print(f"{'':9} {'first serial byte ms':>22} {'power-off/exit ms':>18} {'max RSS KiB':>12}")
for name, (a, b, c) in res.items():
    print(f"{name:9} {a:22.1f} {b:18.1f} {c:12.0f}")
if "qemu" in res and "brig" in res:
    r = [res['qemu'][i] / res['brig'][i] for i in range(3)]
    print(f"{'qemu/brig':9} {r[0]:19.2f}x {r[1]:17.2f}x {r[2]:11.2f}x")
PY
