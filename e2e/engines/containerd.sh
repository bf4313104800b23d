#!/bin/sh
# Drives containerd 1.6 (runc shim v2, with --runc-binary) with a given OCI runtime:
#   e2e/engines/containerd.sh [RUNTIME_PATH]
# A private containerd (socket, root, state under a temp dir) and a busybox image exported by
# podman from the local rootfs. Prints "ok/not ok" lines and "N passed, M failed".
set -u
cd "$(dirname "$0")/../.."
runtime=${1:-$(pwd)/.build/debug/brig}
name=$(basename "$runtime")
work=$(mktemp -d /tmp/brig-ctrd-XXXXXX)
cleanup() {
  [ -n "${ctrd_pid:-}" ] && kill "$ctrd_pid" 2>/dev/null && wait "$ctrd_pid" 2>/dev/null
  rm -rf "$work" 2>/dev/null
}
trap cleanup EXIT
command -v containerd >/dev/null && command -v podman >/dev/null || { echo "containerd.sh: containerd/podman not installed"; exit 1; }
# The repo's busybox rootfs when it is there (the VM test host has a copy and no static busybox).
rootfs=$(pwd)/.cache/rootfs
[ -x "$rootfs/bin/busybox" ] || { rootfs=$work/rootfs; ./scripts/make-rootfs.sh "$rootfs"; }
. "$(dirname "$0")/lib.sh"
busybox_oci_archive "$rootfs" "$work"
start_containerd "$work"
ctr_ image import --base-name localhost/busybox "$work/oci.tar" >"$work/import.log" 2>&1 || { echo "not ok - import image: $(cat "$work/import.log")"; exit 1; }
img=localhost/busybox:latest
run() { ctr_ run --rm --runc-binary "$runtime" "$@"; }
check "ctr run --rm echo" "hello" "$(run $img c1 echo hello 2>&1)"
run $img c2 sh -c 'exit 9' >/dev/null 2>&1
check "exit code" "9" "$?"
ctr_ run -d --runc-binary "$runtime" $img long sh -c 'trap "exit 0" TERM; while true; do sleep 0.1; done' >/dev/null 2>&1
check "long-running task listed" "RUNNING" "$(ctr_ task ls 2>&1 | awk '$1=="long"{print $3}')"
check "exec in the task" "in-exec" "$(ctr_ task exec --exec-id e1 long echo in-exec 2>&1)"
ctr_ task exec --exec-id e2 long sh -c 'exit 4' >/dev/null 2>&1
check "exec exit code" "4" "$?"
check "task ps lists processes" "yes" "$(ctr_ task ps long 2>&1 | awk 'NR>1' | grep -q . && echo yes || echo no)"
ctr_ task kill -s SIGTERM long >/dev/null 2>&1
for i in $(seq ${ENGINE_WAIT_TRIES:-50}); do [ "$(ctr_ task ls 2>&1 | awk '$1=="long"{print $3}')" = STOPPED ] && break; sleep 0.1; done
check "kill TERM stops it" "STOPPED" "$(ctr_ task ls 2>&1 | awk '$1=="long"{print $3}')"
ctr_ task delete long >/dev/null 2>&1; ctr_ container delete long >/dev/null 2>&1
ctr_ run -d --runc-binary "$runtime" $img stubborn sleep 1000 >/dev/null 2>&1
ctr_ task kill -s SIGKILL stubborn >/dev/null 2>&1
for i in $(seq ${ENGINE_WAIT_TRIES:-50}); do [ "$(ctr_ task ls 2>&1 | awk '$1=="stubborn"{print $3}')" = STOPPED ] && break; sleep 0.1; done
check "kill KILL" "STOPPED" "$(ctr_ task ls 2>&1 | awk '$1=="stubborn"{print $3}')"
ctr_ task delete stubborn >/dev/null 2>&1; ctr_ container delete stubborn >/dev/null 2>&1
tty_session "tty (expect)" ctr --address $work/containerd.sock run --rm -t --runc-binary $runtime $img tty1 sh
check "no containers left" "" "$(ctr_ container ls -q 2>&1)"
summary
