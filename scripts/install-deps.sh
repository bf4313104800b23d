#!/bin/sh
# Installs the Debian packages brig's build, tests, demo and benchmarks use. Idempotent: skips
# apt entirely when everything is already there.
set -eu
# busybox-static: test rootfs; libseccomp-dev: seccomp; linux-source-6.1 and its build tools:
# the guest kernel for the VMM's Linux boot test; runc, crun, hyperfine: benchmarks;
# qemu-system-x86, linux-image-cloud-amd64, cpio: brig-agent's real-guest test (docs/agent-guest.md).
# python3-grpcio, python3-protobuf, protobuf-compiler: the CRI client of e2e/engines/cri.sh;
# systemd: the VM test host booted with systemd as PID 1 (e2e/vmhost/run --layout systemd).
pkgs="busybox-static libseccomp-dev e2fsprogs gcc file iproute2 runc crun hyperfine expect
      linux-source-6.1 flex bison bc libelf-dev libssl-dev make xz-utils podman conmon containerd
      qemu-system-x86 linux-image-cloud-amd64 cpio python3-grpcio python3-protobuf protobuf-compiler systemd"
missing=""
for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  echo "install-deps: installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq $missing >/dev/null
fi
command -v swift >/dev/null || { echo "install-deps: swift not on PATH (expected /opt/swift/usr/bin)" >&2; exit 1; }
