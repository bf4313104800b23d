#!/bin/bash
# brig SIGKILLed at each CrashPoint (BRIG_TEST_MODE=crash, see docs/reliability.md), then
# `brig delete --force`: nothing may be left (state dir, cgroups on any hierarchy, live
# processes in them). The shell twin of ReliabilityTests' crash test, for hosts without the
# Swift toolchain (e.g. e2e/vmhost: `e2e/vmhost/run -- e2e/crash-points.sh`).
#   e2e/crash-points.sh [BRIG [POINT…]]      default: brig on PATH, every point
set -u
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
brig=$(readlink -f "$(command -v "${1:-brig}")"); [ $# -gt 0 ] && shift
points=("$@")
[ ${#points[@]} -gt 0 ] || points=(create.staged create.reserved create.recorded create.cgroups create.spawned
    create.placed init.namespaces init.forked create.child create.ready create.saved start.connected
    exec.spawned exec.placed delete.killed delete.destroyed)
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/brig-crashpoints-XXXXXX)
trap 'rm -rf "$work"' EXIT
REPO=$here; . "$here/e2e/lib/containers.sh"
sleep_bundle "$work/bundle" "$brig" || { echo "could not make the bundle" >&2; exit 1; }
B() { "$brig" --root "$work/state" "$@"; }
crash() { env BRIG_TEST_MODE=crash BRIG_TEST_KILL_AT="$point" "$brig" --root "$work/state" "$@" >/dev/null 2>&1; echo $?; }
failed=0
for point in "${points[@]}"; do
    id=cp-$$-${point//./-}
    case $point in
        create.*|init.*) rc=$(crash create --bundle "$work/bundle" "$id") ;;
        start.*) B create --bundle "$work/bundle" "$id"; rc=$(crash start "$id") ;;
        exec.*) B run -d --bundle "$work/bundle" "$id"; rc=$(crash exec "$id" sleep 1000) ;;
        delete.*) B run -d --bundle "$work/bundle" "$id"; rc=$(crash delete --force "$id") ;;
    esac
    listed=$(B list 2>/dev/null | while read -r cid _ status _; do [ "$cid" = "$id" ] && echo "$status"; done)
    B delete --force "$id" >/dev/null 2>&1; drc=$?
    sleep 0.2
    cg=$(find /sys/fs/cgroup -maxdepth 8 -type d -name "$id" 2>/dev/null | wc -l)
    procs=$(live_procs "$id")
    entries=$(ls -A "$work/state" 2>/dev/null | grep -c -- "$id")
    verdict=ok
    if [ "$rc" != 137 ] || [ "$drc" != 0 ] || [ "$cg" != 0 ] || [ "$procs" != 0 ] || [ "$entries" != 0 ]; then verdict=FAIL; failed=1; fi
    echo "$verdict $point: brig exit $rc, listed ${listed:-(not)}, delete --force $drc; left: $cg cgroup dirs, $procs processes, $entries state entries"
done
exit $failed
