#!/bin/sh
# The systemd cgroup driver (--systemd-cgroup) in the VM test host booted with Debian's systemd
# as PID 1 (layout systemd): e2e/vmhost/systemd-guest.sh with runc (the reference; its result is
# reported, not required) and with brig (must pass), then, unless --no-conformance, the
# conformance suite with --systemd-cgroup: runc first, and brig must pass every case runc passes.
#   swift build -c release --product brig
#   e2e/vmhost/systemd.sh [--out DIR] [--no-conformance] [CASE…]
# TAP and JSON results stay in DIR (default .cache/vmhost/results-systemd).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=$repo/.cache/vmhost/results-systemd conformance=1
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --no-conformance) conformance=0; shift ;;
    *) break ;;
  esac
done
rm -rf "$out"; mkdir -p "$out"
start=$(date +%s)
cmd='rc=0
sh e2e/vmhost/systemd-guest.sh /usr/sbin/runc runc > /work/out/runc-driver.tap 2>&1
echo "# runc --systemd-cgroup: $(grep -c "^ok" /work/out/runc-driver.tap) ok, $(grep -c "^not ok" /work/out/runc-driver.tap) not ok"
grep "^not ok" /work/out/runc-driver.tap
sh e2e/vmhost/systemd-guest.sh brig brig > /work/out/brig-driver.tap 2>&1 || rc=1
echo "# brig --systemd-cgroup: $(grep -c "^ok" /work/out/brig-driver.tap) ok, $(grep -c "^not ok" /work/out/brig-driver.tap) not ok"
grep -v "^ok" /work/out/brig-driver.tap
python3 conformance/run --systemd-cgroup --runtime $(pwd)/.build/release/brig cgroup-systemd > /work/out/brig-case.tap 2>&1 || rc=1
grep -q "^1 passed" /work/out/brig-case.tap || rc=1
echo "# conformance cgroup-systemd, brig: $(tail -1 /work/out/brig-case.tap)"
grep -v "^ok " /work/out/brig-case.tap'
if [ "$conformance" = 1 ]; then
  cmd="$cmd
python3 conformance/run --systemd-cgroup --runtime /usr/sbin/runc --json /work/out/runc.json $* > /work/out/runc.tap 2>&1
echo \"# conformance, runc --systemd-cgroup: \$(tail -1 /work/out/runc.tap)\"
python3 conformance/run --systemd-cgroup --runtime \$(pwd)/.build/release/brig --json /work/out/brig.json --at-least /work/out/runc.json $* > /work/out/brig.tap 2>&1 || rc=1
echo \"# conformance, brig --systemd-cgroup: \$(grep -c '^ok' /work/out/brig.tap) ok\"
grep -v '^ok ' /work/out/brig.tap"
fi
cmd="$cmd
exit \$rc"
if "$here/run" --layout systemd --timeout 2400 --out "$out" -- "$cmd"; then
  echo "# vmhost systemd: ok ($(( $(date +%s) - start )) s)"
else
  echo "# vmhost systemd: FAILED ($(( $(date +%s) - start )) s; results in $out)"
  exit 1
fi
