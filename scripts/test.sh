#!/bin/sh
# Runs brig's whole test suite: unit tests (no root needed) and, as root, the integration tests
# that drive the built `brig` binary through real containers.
set -eu
cd "$(dirname "$0")/.."
[ -x .cache/rootfs/bin/busybox ] || ./scripts/make-rootfs.sh .cache/rootfs
swift build --build-tests
if [ "$(id -u)" != 0 ]; then echo "test.sh: not root: integration tests are skipped (run as root to include them)"; fi
swift test --skip-build
# As root: real engines with brig as their runtime (the same scripts pass with runc).
if [ "$(id -u)" = 0 ]; then
  tests/engines/podman.sh "$(pwd)/.build/debug/brig"
  tests/engines/containerd.sh "$(pwd)/.build/debug/brig"
  # The cross-runtime conformance suite: fails if a case brig passes in RESULTS.md regresses.
  conformance/ci.sh "$(pwd)/.build/debug/brig"
fi
