#!/bin/sh
# Runs brig's whole test suite: as root, the real engines (podman, containerd, its CRI) and the
# cross-runtime conformance suite with brig as the runtime; then the Swift Testing suites
# (unit tests need no root; as root also the integration tests that drive the built binary
# through real containers, the cgroup/seccomp kernel tests and the VMM on /dev/kvm).
set -eu
cd "$(dirname "$0")/.."
[ -x .cache/rootfs/bin/busybox ] || ./scripts/make-rootfs.sh .cache/rootfs
swift build --build-tests
# DEVELOPERS.md's map of the tree is generated from Package.swift: fail if it is stale.
scripts/devmap --check
# The QEMU guest test boots the static brig-agent as a guest's PID 1 (docs/agent-guest.md).
swift build -c release --product brig-agent
# brig's guest kernel (.cache/kernel/, cached): LinuxBootTests would build it inside `swift test`;
# built first so that QemuGuestTests also runs the agent and containers on it. Same flavour as
# LinuxBootTests picks (PVM host: /sys/module/kvm_pvm).
if [ -f /usr/src/linux-source-6.1.tar.xz ]; then
  PVM_HOST=$([ -d /sys/module/kvm_pvm ] && echo 1 || echo 0) ./scripts/build-guest-kernel.sh >/dev/null
fi
# conformance/'s own unit tests (notes.toml's rule, RESULTS.md rendering): no root, no containers.
python3 -B -m unittest discover -s conformance/tests -t .
brig="$(pwd)/.build/debug/brig"
if [ "$(id -u)" = 0 ]; then
  e2e/engines/podman.sh "$brig"
  e2e/engines/containerd.sh "$brig"
  e2e/engines/cri.sh "$brig"
  # containerd again, with the microvm backend (host-agent transport: no VM on this host).
  BRIG="$brig" e2e/engines/containerd.sh "$(pwd)/e2e/engines/brig-microvm"
  # Fails if a case brig passes in conformance/RESULTS.md regresses, or features drift.
  conformance/ci.sh "$brig"
  # Pure cgroup v2, in the VM test host (e2e/vmhost: QEMU TCG, Debian's cloud kernel), in the
  # layouts users run: root in the root cgroup, in a systemd service's cgroup, and rootless in a
  # delegated subtree. runc runs the suite first; brig must pass every case runc passes there and
  # every case its "brig v2 LAYOUT" column of conformance/RESULTS.md records. ~4-6 min a layout.
  # (Each e2e/vmhost/run: a VM test host that freezes — it did, once in CI — is found by 10 min
  # without output and a stopped heartbeat, and the step runs once more; a hang of the command
  # itself fails. See e2e/vmhost/run's --stall.)
  swift build -c release --product brig
  e2e/vmhost/conformance.sh
  # Bad cgroup v2 placements on a real cgroup2 fs: each a clear error, nothing left (~1 min).
  e2e/vmhost/run --layout root --timeout 900 -- 'sh e2e/vmhost/cgroup-v2-errors.sh'
  # The microvm backend end to end under KVM (kvm_amd inside the VM test host, which emulates
  # SVM): brig's VMM, brig's guest kernel, brig-agent, the container, through the CLI; with brig
  # SIGKILLed at each step of a create and 10 lifecycles of churn (~5 min; ~15 on a loaded host).
  # One more run when it fails, printed as FLAKY if that one passes: once in CI (session 12's
  # submission) case 2's container stopped during its exec -t and every later step of that case
  # failed; 40 exec -t rounds and the whole run passed here afterwards. A failed case now prints
  # why its VM stopped and the end of the guest console (docs/microvm.md).
  e2e/vmhost/microvm-e2e.sh --timeout 1200 || {
    echo "# microvm-e2e failed; once more"
    e2e/vmhost/microvm-e2e.sh --timeout 1200
    echo "# FLAKY: microvm-e2e failed, then passed on its retry"
  }
  # The conformance suite with the microvm backend under KVM there (one VM per container): brig
  # must pass every case the "brig microvm (KVM)" column of conformance/RESULTS.md records as
  # passing; the others are the VM-boundary differences docs/microvm.md lists (~12 min).
  e2e/vmhost/microvm-conformance.sh --baseline --timeout 1800
  # The microvm container's network: a namespace prepared as CNI's bridge plugin does (veth,
  # address, route) given by path, the guest reachable both ways (ICMP, TCP) through virtio-net
  # on a tap mirrored to the veth; nothing left after delete (~3 min).
  # One more run when it fails, printed as FLAKY if that one passes: once in CI (session 11's
  # dry run) the container's output stopped after its first two commands and nothing answered;
  # the rerun passed all 15 (docs/microvm.md).
  e2e/vmhost/microvm-net.sh --timeout 900 || {
    echo "# microvm-net failed; once more"
    e2e/vmhost/microvm-net.sh --timeout 900
    echo "# FLAKY: microvm-net failed, then passed on its retry"
  }
  # Host bind mounts in a microvm container over virtio-fs: a directory bind read and written
  # both ways with ownership, a file bind, a read-only (noexec) bind, symlink/.. escapes from the
  # guest, nothing left after delete (~2 min).
  e2e/vmhost/microvm-fs.sh --timeout 600
  # The systemd cgroup driver with systemd as PID 1 (layout systemd): transient scopes, limits as
  # unit properties and files, update, pause/resume, exec, `systemctl stop`, annotations, delete
  # --force after a killed brig; rootless through the user's manager (lingering, in a scope of
  # it); podman --cgroup-manager=systemd and containerd with SystemdCgroup; podman with the
  # microvm backend under KVM (its binds over virtio-fs, ~75 s more); runc runs the same
  # checks as the reference for root (174 s; up to ~10 min on a loaded host). The conformance suite with
  # --systemd-cgroup, root and rootless (e2e/vmhost/systemd.sh without --no-conformance), takes
  # ~20 min more.
  e2e/vmhost/systemd.sh --no-conformance
else
  echo "test.sh: not root: engine, conformance and integration tests are skipped (run as root)"
fi
swift test --skip-build
