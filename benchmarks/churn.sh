#!/bin/bash
# Churn: N create/start/kill/delete lifecycles (4 CLI calls each) on one bundle, timed, with
# what the host holds before and after: open files (/proc/sys/fs/file-nr), mounts, cgroup
# directories (all hierarchies), /run/brig entries, entries in the state root, cgroups and
# processes named after this run's ids. Usage (root):
#   benchmarks/churn.sh [RUNTIME [N]]        default .build/debug/brig 1000
# Host-wide counters include other users of this host; the per-run ones are exact.
set -eu
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
rt=$(readlink -f "${1:-.build/debug/brig}")
n=${2:-1000}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/brig-churn-XXXXXX)
trap 'rm -rf "$work"' EXIT
REPO=$here; . "$here/e2e/lib/containers.sh"
sleep_bundle "$work/bundle" "$rt"
cd "$work/bundle"
root=$work/state
prefix=churn-$$
snapshot() {
    echo "$(cut -f1 /proc/sys/fs/file-nr) $(wc -l < /proc/self/mountinfo)" \
         "$(find /sys/fs/cgroup -mindepth 1 -type d 2>/dev/null | wc -l) $(ls -A /run/brig 2>/dev/null | wc -l)"
}
lifecycle() {
    "$rt" --root "$root" create --bundle "$work/bundle" "$1" &&
    "$rt" --root "$root" start "$1" &&
    "$rt" --root "$root" kill "$1" KILL &&
    "$rt" --root "$root" delete --force "$1"
}
for i in 1 2 3 4 5; do lifecycle "$prefix-w$i" >/dev/null; done
read -r fds0 mounts0 cg0 run0 <<<"$(snapshot)"
failures=0
t0=$(date +%s%N)
for ((i = 0; i < n; i++)); do lifecycle "$prefix-$i" >/dev/null 2>&1 || failures=$((failures + 1)); done
t1=$(date +%s%N)
read -r fds1 mounts1 cg1 run1 <<<"$(snapshot)"
ours_cg=$(find /sys/fs/cgroup -mindepth 1 -maxdepth 6 -type d -name "$prefix-*" 2>/dev/null | wc -l)
sleep 1  # the last container's processes are being reaped by whoever inherited them
ours_procs=0
for f in $(grep -ls "/$prefix-" /proc/[0-9]*/cgroup 2>/dev/null); do
    d=${f%/cgroup}
    state=$(sed 's/.*) //' "$d/stat" 2>/dev/null | cut -d' ' -f1)
    [ -n "$state" ] && [ "$state" != Z ] && ours_procs=$((ours_procs + 1))
done
ms=$(( (t1 - t0) / 1000000 ))
echo "$rt: $n lifecycles (create/start/kill/delete) in $ms ms ($((ms * 1000 / n)) us each), $failures failed"
echo "  host open files $fds0 -> $fds1, mounts $mounts0 -> $mounts1, cgroup dirs $cg0 -> $cg1, /run/brig entries $run0 -> $run1"
echo "  this run: state root entries $(ls -A "$root" | wc -l), cgroups $ours_cg, live processes $ours_procs"
