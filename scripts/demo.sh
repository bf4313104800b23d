#!/bin/sh
# One command for a newcomer: installs what is needed, builds brig (release, static), makes a
# busybox-static bundle, and runs a container that prints from inside it.
set -eu
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo.sh: run as root (containers need it)" >&2; exit 1; }
./scripts/install-deps.sh
swift build -c release --product brig
brig=$(pwd)/.build/release/brig
bundle=$(pwd)/.cache/demo
./scripts/make-rootfs.sh "$bundle/rootfs"
rm -f "$bundle/config.json"
"$brig" spec --bundle "$bundle"
# Non-interactive: no terminal, and a command that shows where it runs.
sed -i 's/"terminal" : true/"terminal" : false/' "$bundle/config.json"
sed -i 's|^\( *\)"sh"$|\1"sh", "-c", "echo hello from inside brig container $(hostname): pid $$, uid $(id -u), $(ls / \| wc -l) entries in /"|' "$bundle/config.json"
"$brig" --root /run/brig-demo delete --force demo >/dev/null 2>&1 || true
echo "+ brig run --bundle $bundle demo"
"$brig" --root /run/brig-demo run --bundle "$bundle" demo
echo "+ exit status $?"
