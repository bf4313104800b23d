#!/bin/bash
# What a runtime killed mid-call leaves behind: ROUNDS times, `RT create` or `RT run -d`
# (alternating) is SIGKILLed after a random 0-60 ms, then `RT delete --force ID` runs; counted
# after each round: cgroup directories named ID on any hierarchy, the state directory, processes
# in those cgroups. Usage (root):
#   benchmarks/crash-leftovers.sh [RUNTIME [ROUNDS]]      e.g. .build/debug/brig 40, /usr/sbin/runc 40
# Runs inside a private mount namespace with a private tmpfs on /run/brig/.exe, so an older
# brig (which shares that directory between all brig binaries) can't disturb other brigs here.
set -eu
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
rt=$(readlink -f "${1:-.build/debug/brig}")
rounds=${2:-40}
here=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${CRASH_LEFTOVERS_INNER:-}" ]; then
    mkdir -p /run/brig/.exe
    exec unshare -m --propagation private env CRASH_LEFTOVERS_INNER=1 sh -c \
        'mount -t tmpfs tmpfs /run/brig/.exe && exec bash "$0" "$@"' "$0" "$rt" "$rounds"
fi
work=$(mktemp -d /tmp/brig-crash-XXXXXX)
trap 'rm -rf "$work"' EXIT
REPO=$here; . "$here/e2e/lib/containers.sh"
sleep_bundle "$work/bundle" "$rt"
cd "$work/bundle"
root=$work/state
rounds_left=0 cg_total=0 dirs_left=0 procs_left=0
i=0
while [ $i -lt "$rounds" ]; do
    id=crash-$$-$i
    if [ $((i % 2)) = 0 ]; then verb="create"; else verb="run -d"; fi
    ms=$((RANDOM % 61))
    "$rt" --root "$root" $verb --bundle "$work/bundle" "$id" >/dev/null 2>&1 &
    pid=$!
    [ $ms -gt 0 ] && sleep "0.$(printf %03d $ms)"
    kill -9 $pid 2>/dev/null || true
    wait $pid 2>/dev/null || true
    "$rt" --root "$root" delete --force "$id" >/dev/null 2>&1 || true
    cg=$(find /sys/fs/cgroup -maxdepth 6 -type d -name "$id" 2>/dev/null | wc -l)
    procs=$(live_procs "$id")
    dir=0; [ -e "$root/$id" ] && dir=1
    if [ "$cg" -gt 0 ] || [ "$dir" = 1 ] || [ "$procs" -gt 0 ]; then
        rounds_left=$((rounds_left + 1))
        # Clean up for the next round (with cgroup-aware tools, not the runtime under test).
        for d in $(find /sys/fs/cgroup -maxdepth 6 -depth -type d -name "$id" 2>/dev/null); do
            for p in $(cat "$d/cgroup.procs" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
            sleep 0.05; rmdir "$d" 2>/dev/null || true
        done
    fi
    cg_total=$((cg_total + cg)); dirs_left=$((dirs_left + dir)); procs_left=$((procs_left + procs))
    i=$((i + 1))
done
echo "$rt: $rounds rounds, SIGKILL at 0-60 ms then delete --force: leftovers in $rounds_left rounds" \
     "($cg_total cgroup dirs, $dirs_left state dirs, $procs_left processes)"
