#!/bin/sh
# Per-create cost of the sealed binary (CVE-2019-5736) ways, on brig's own binaries:
#   benchmarks/sealed-exe.sh [ROUNDS] [BINARY...]     default 50, .build/debug/brig .build/release/brig
# Runs in a private mount namespace (the old shared-copy method mounts).
set -eu
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
cd "$(dirname "$0")/.."
rounds=${1:-50}; [ $# -gt 0 ] && shift
[ $# -gt 0 ] || set -- .build/debug/brig .build/release/brig
work=$(mktemp -d /tmp/brig-sealed-XXXXXX)
trap 'rm -rf "$work"' EXIT
cc -O2 -I Sources/C/CBrigShim/include -o "$work/sealed-exe" benchmarks/sealed-exe/sealed-exe.c Sources/C/CBrigShim/shim.c
for b in "$@"; do
    [ -f "$b" ] || { echo "$b: not built, skipped"; continue; }
    unshare -m --propagation private "$work/sealed-exe" "$(readlink -f "$b")" "$rounds" "$work"
done
