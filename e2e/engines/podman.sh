#!/bin/sh
# Drives podman 4.3 + conmon with a given OCI runtime (brig by default, runc as the reference):
#   e2e/engines/podman.sh [RUNTIME_PATH]
# Private storage and state under a temp dir, a busybox image imported from the local rootfs.
# Prints TAP-like lines and "N passed, M failed"; exits non-zero on any failure, naming the step.
set -u
cd "$(dirname "$0")/../.."
runtime=${1:-$(pwd)/.build/debug/brig}
name=$(basename "$runtime")
work=$(mktemp -d /tmp/brig-podman-XXXXXX)
trap 'podman_ rm -af -t 0 >/dev/null 2>&1; rm -rf "$work" 2>/dev/null' EXIT
command -v podman >/dev/null || { echo "podman.sh: podman not installed (scripts/install-deps.sh)"; exit 1; }
./scripts/make-rootfs.sh "$work/rootfs"
# Root here lacks CAP_SYS_RESOURCE: ulimits must stay within the hard limits.
cat > "$work/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "$name"
[engine.runtimes]
$name = ["$runtime"]
CONF
export CONTAINERS_CONF="$work/containers.conf"
podman_() { podman --root "$work/storage" --runroot "$work/run" --storage-driver vfs "$@"; }
tar -C "$work/rootfs" -cf "$work/busybox.tar" .
podman_ import -q "$work/busybox.tar" localhost/busybox:latest >/dev/null || { echo "not ok - import image"; exit 1; }
img=localhost/busybox:latest
. "$(dirname "$0")/lib.sh"
check "run --rm echo" "hello" "$(podman_ run --rm $img echo hello 2>&1)"
podman_ run --rm $img sh -c 'exit 7' >/dev/null 2>&1
check "exit code propagates" "7" "$?"
check "env" "bar" "$(podman_ run --rm -e FOO=bar $img sh -c 'echo $FOO' 2>&1)"
check "--user" "1000:100" "$(podman_ run --rm --user 1000:100 $img sh -c 'echo $(id -u):$(id -g)' 2>&1)"
check "--read-only root, writable /tmp" "ro tmp" "$(podman_ run --rm --read-only $img sh -c 'touch /x 2>/dev/null || printf ro; touch /tmp/y && echo " tmp"' 2>&1)"
check "--memory" "67108864" "$(podman_ run --rm --memory 64m $img cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>&1)"
check "--pids-limit" "50" "$(podman_ run --rm --pids-limit 50 $img cat /sys/fs/cgroup/pids/pids.max 2>&1)"
podman_ run -d --name long $img sh -c 'trap "exit 0" TERM; while true; do sleep 0.1; done' >/dev/null 2>&1
check "run -d, ps shows it" "long" "$(podman_ ps --format '{{.Names}}' 2>&1)"
check "exec into a running container" "in-exec 0" "$(podman_ exec long sh -c 'echo in-exec $(id -u)' 2>&1)"
podman_ exec long sh -c 'exit 5' >/dev/null 2>&1
check "exec exit code" "5" "$?"
check "inspect" "running" "$(podman_ inspect --format '{{.State.Status}}' long 2>&1)"
check "top (runtime ps)" "yes" "$(podman_ top long 2>&1 | grep -q 'sleep\|sh' && echo yes || echo no)"
check "stop with TERM" "0" "$(podman_ stop -t 5 long >/dev/null 2>&1; podman_ inspect --format '{{.State.ExitCode}}' long 2>&1)"
podman_ rm long >/dev/null 2>&1
podman_ run -d --name stubborn $img sleep 1000 >/dev/null 2>&1
check "stop falls back to KILL" "137" "$(podman_ stop -t 1 stubborn >/dev/null 2>&1; podman_ inspect --format '{{.State.ExitCode}}' stubborn 2>&1)"
podman_ rm stubborn >/dev/null 2>&1
tty_session "tty session (expect)" podman --root $work/storage --runroot $work/run --storage-driver vfs run --rm -it $img sh
summary
