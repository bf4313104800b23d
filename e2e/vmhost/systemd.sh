#!/bin/sh
# The systemd cgroup driver (--systemd-cgroup) in the VM test host booted with Debian's systemd
# as PID 1 (layout systemd): e2e/vmhost/systemd-guest.sh (root), systemd-rootless.sh (uid 1000
# through its own manager, in a scope of it: systemd-user.sh), systemd-engines.sh (podman
# --cgroup-manager=systemd, containerd with SystemdCgroup), each with brig (must pass) and with
# runc (the reference, reported, not required; with --no-conformance for the root checks only);
# podman-microvm.sh and microvm-engines.sh (podman, and containerd through the runc shim, with
# brig's microvm backend under KVM: kvm_amd, microvm-guest.sh);
# then, unless --no-conformance, the conformance suite with --systemd-cgroup as root and
# rootless: runc first, and brig must pass every case runc passes.
#   swift build -c release --product brig && swift build -c release --product brig-agent
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
chmod 1777 /work/out
# summary NAME TAP: one line of counts, then every line that is not "ok".
summary() { echo "# $1: $(grep -c "^ok" "$2") ok, $(grep -c "^not ok" "$2") not ok"; grep -v "^ok" "$2"; }
sh e2e/vmhost/systemd-guest.sh /usr/sbin/runc runc > /work/out/runc-driver.tap 2>&1
echo "# runc --systemd-cgroup: $(grep -c "^ok" /work/out/runc-driver.tap) ok, $(grep -c "^not ok" /work/out/runc-driver.tap) not ok"
grep "^not ok" /work/out/runc-driver.tap
sh e2e/vmhost/systemd-guest.sh brig brig > /work/out/brig-driver.tap 2>&1 || rc=1
summary "brig --systemd-cgroup" /work/out/brig-driver.tap
python3 conformance/run --systemd-cgroup --runtime $(pwd)/.build/release/brig cgroup-systemd > /work/out/brig-case.tap 2>&1 || rc=1
grep -q "^1 passed" /work/out/brig-case.tap || rc=1
echo "# conformance cgroup-systemd, brig: $(tail -1 /work/out/brig-case.tap)"
grep -v "^ok " /work/out/brig-case.tap
# Rootless: uid 1000 in a scope of its own manager (lingering), containers through that manager.
sh e2e/vmhost/systemd-user.sh sh e2e/vmhost/systemd-rootless.sh brig brig > /work/out/brig-rootless.tap 2>&1 || rc=1
summary "brig --systemd-cgroup, rootless" /work/out/brig-rootless.tap
sh e2e/vmhost/systemd-user.sh python3 conformance/run --rootless --systemd-cgroup --runtime $(pwd)/.build/release/brig cgroup-systemd-user > /work/out/brig-user-case.tap 2>&1 || rc=1
grep -q "^1 passed" /work/out/brig-user-case.tap || rc=1
echo "# conformance cgroup-systemd-user, brig: $(tail -1 /work/out/brig-user-case.tap)"
grep -v "^ok " /work/out/brig-user-case.tap
# The engines with their systemd cgroup manager.
sh e2e/vmhost/systemd-engines.sh $(pwd)/.build/release/brig > /work/out/brig-engines.tap 2>&1 || rc=1
summary "podman/containerd (systemd cgroups) with brig" /work/out/brig-engines.tap
# podman with the microvm backend over KVM (its binds over virtio-fs).
sh e2e/vmhost/podman-microvm.sh /work/repo/.build/microvm-guest > /work/out/brig-podman-microvm.tap 2>&1 || rc=1
summary "podman with brig --backend microvm (KVM)" /work/out/brig-podman-microvm.tap
# containerd (runc shim, BinaryName = brig) with the microvm backend over KVM.
sh e2e/vmhost/microvm-engines.sh --in-vm > /work/out/brig-containerd-microvm.tap 2>&1 || rc=1
summary "containerd with brig --backend microvm (KVM)" /work/out/brig-containerd-microvm.tap'
if [ "$conformance" = 1 ]; then
  # runc's rootless and engine runs, the reference (reported), only in the full run (CI time).
  cmd="$cmd
sh e2e/vmhost/systemd-user.sh sh e2e/vmhost/systemd-rootless.sh /usr/sbin/runc runc > /work/out/runc-rootless.tap 2>&1
summary \"runc --systemd-cgroup, rootless\" /work/out/runc-rootless.tap
sh e2e/vmhost/systemd-engines.sh /usr/sbin/runc > /work/out/runc-engines.tap 2>&1
summary \"podman/containerd (systemd cgroups) with runc\" /work/out/runc-engines.tap
python3 conformance/run --systemd-cgroup --runtime /usr/sbin/runc --json /work/out/runc.json $* > /work/out/runc.tap 2>&1
echo \"# conformance, runc --systemd-cgroup: \$(tail -1 /work/out/runc.tap)\"
python3 conformance/run --systemd-cgroup --runtime \$(pwd)/.build/release/brig --json /work/out/brig.json --at-least /work/out/runc.json $* > /work/out/brig.tap 2>&1 || rc=1
echo \"# conformance, brig --systemd-cgroup: \$(grep -c '^ok' /work/out/brig.tap) ok\"
grep -v '^ok ' /work/out/brig.tap
chown -R 1000:1000 /work/repo
sh e2e/vmhost/systemd-user.sh python3 conformance/run --rootless --systemd-cgroup --runtime /usr/sbin/runc --json /work/out/runc-rootless.json $* > /work/out/runc-rootless-conformance.tap 2>&1
echo \"# conformance, runc --systemd-cgroup rootless: \$(tail -1 /work/out/runc-rootless-conformance.tap)\"
sh e2e/vmhost/systemd-user.sh python3 conformance/run --rootless --systemd-cgroup --runtime \$(pwd)/.build/release/brig --json /work/out/brig-rootless.json --at-least /work/out/runc-rootless.json $* > /work/out/brig-rootless-conformance.tap 2>&1 || rc=1
echo \"# conformance, brig --systemd-cgroup rootless: \$(grep -E '^[0-9]+ passed' /work/out/brig-rootless-conformance.tap)\"
grep -v '^ok ' /work/out/brig-rootless-conformance.tap"
fi
cmd="$cmd
exit \$rc"
guest=$(sh "$here/microvm-guest.sh") || exit 2   # needs .build/release/brig-agent too
# (the conformance runs print only their summaries: ~20 min without output)
stall=600; [ $conformance = 1 ] && stall=2400
if "$here/run" --layout systemd --modules kvm_amd --copy "$guest" --timeout 3600 --stall $stall --out "$out" -- "$cmd"; then
  echo "# vmhost systemd: ok ($(( $(date +%s) - start )) s)"
else
  echo "# vmhost systemd: FAILED ($(( $(date +%s) - start )) s; results in $out)"
  exit 1
fi
