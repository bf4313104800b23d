#!/bin/sh
# Bad cgroup placements on a real pure cgroup v2 host. Each situation is set up on the cgroup2 fs,
# brig runs a container there, and the script checks the exit status, the message (it must name
# the cgroup file or the controller), and that nothing is left: no cgroup directory brig made,
# no state directory, no process. Exits non-zero when any check fails.
#   swift build -c release --product brig
#   e2e/vmhost/run --layout root -- 'sh e2e/vmhost/cgroup-v2-errors.sh'
set -u
cg=/sys/fs/cgroup
work=$(mktemp -d /tmp/cgv2.XXXXXX)
state=$work/state
rootfs=$(pwd)/.cache/rootfs
failures=0 checks=0
[ -f $cg/cgroup.controllers ] || { echo "not a pure cgroup v2 host"; exit 2; }
[ "$(id -u)" = 0 ] || { echo "needs root (e2e/vmhost/run --layout root)"; exit 2; }
[ -x "$rootfs/bin/busybox" ] || { echo "no rootfs at $rootfs"; exit 2; }
chmod 0755 "$work"

ok() { checks=$((checks + 1)); echo "ok $checks - $1"; }
not_ok() { checks=$((checks + 1)); failures=$((failures + 1)); echo "not ok $checks - $1"; }
check() { # check DESCRIPTION COMMAND…: a check that passes when COMMAND does
  d=$1; shift
  if "$@"; then ok "$d"; else not_ok "$d"; fi
}

# Processes that are neither the kernel's nor this script's ancestors or descendants: what a
# failed create left behind (its own test processes are children of this script). The VM test
# host's heartbeat and its children are not (heartbeat.sh).
. "$(dirname "$0")/heartbeat.sh"
strays() {
  ps -e -o pid=,ppid= > "$work/ps.all" || { echo "ps failed"; return 1; }
  without_heartbeat < "$work/ps.all" > "$work/ps"
  busybox awk -v me=$$ '
    { parent[$1 + 0] = $2 + 0 }
    END {
      for (p = me; p > 0; p = parent[p]) mine[p] = 1
      for (p in parent) {
        p += 0
        if (p == 2 || parent[p] == 2 || (p in mine)) continue
        q = p; n = 0
        while (q > 1 && q != me && n++ < 1000) q = parent[q]
        if (q != me) print p
      }
    }' "$work/ps" || echo "awk failed"
}
sleepers=""
sleeper_in() { # sleeper_in CGROUP: a process of the test's own, in CGROUP
  sleep 100000 &
  sleepers="$sleepers $!"
  echo $! > "$1/cgroup.procs"
}
no_new_process() {
  left=$(strays)
  [ -z "$left" ] && return 0
  for p in $left; do echo "#   left: $p $(tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null)"; done
  return 1
}

# bundle NAME CGROUPS_PATH RESOURCES_JSON [rootless]: a bundle running `true`.
bundle() {
  b=$work/$1
  mkdir -p "$b"
  brig spec --bundle "$b" ${4:+--rootless}
  python3 - "$b/config.json" "$rootfs" "$2" "$3" "${4:-}" <<'PY'
import json, sys
path, rootfs, cgpath, resources, rootless = sys.argv[1:]
c = json.load(open(path))
c["root"] = {"path": rootfs, "readonly": True}
c["process"]["terminal"] = False
c["process"]["args"] = ["true"]
c["linux"]["cgroupsPath"] = cgpath
c["linux"]["resources"] = json.loads(resources)
if rootless:
    c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]
    c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]
json.dump(c, open(path, "w"))
PY
  [ -n "${4:-}" ] && chown -R 1000:1000 "$b"
}

# run_brig ID BUNDLE [MODE]: `brig run -d` (MODE=-d) or `brig run`, at most 30 s, as root
# (or as uid 1000 with AS=rootless); sets $status and $err (its stderr).
run_brig() {
  id=$1 b=$work/$2 mode=${3:-}
  if [ "${AS:-}" = rootless ]; then
    setpriv --reuid=1000 --regid=1000 --clear-groups -- env XDG_RUNTIME_DIR=$work/rl \
      timeout 30 brig --root "$work/rl/state" run $mode --bundle "$b" "$id" > "$work/$id.out" 2> "$work/$id.err" < /dev/null
  else
    timeout 30 brig --root "$state" run $mode --bundle "$b" "$id" > "$work/$id.out" 2> "$work/$id.err" < /dev/null
  fi
  status=$?
  err=$(cat "$work/$id.err")
  echo "#   $id: exit $status: $err"
}

# expect_refused ID MESSAGE [PATH…]: exit 1, MESSAGE in stderr, no state, no new process, and no
# PATH (the cgroup directories brig would have made).
expect_refused() {
  id=$1 msg=$2; shift 2
  check "$id: exit status 1" [ "$status" = 1 ]
  case "$err" in *"$msg"*) ok "$id: says: $msg" ;; *) not_ok "$id: says: $msg" ;; esac
  check "$id: no state directory" [ ! -e "$state/$id" -a ! -e "$work/rl/state/$id" ]
  check "$id: no process left" no_new_process
  for p in "$@"; do check "$id: no cgroup $p" [ ! -e "$p" ]; done
}

# Undoes what a brig that got it wrong left (so the next case starts clean).
cleanup_case() {
  for p in "$@"; do [ -f "$p/cgroup.freeze" ] && echo 0 > "$p/cgroup.freeze"; done
  brig --root "$state" delete -f "$id" >/dev/null 2>&1
  setpriv --reuid=1000 --regid=1000 --clear-groups -- brig --root "$work/rl/state" delete -f "$id" >/dev/null 2>&1
  for p in "$@"; do
    [ -d "$p" ] || continue
    find "$p" -depth -type d -exec rmdir {} + 2>/dev/null
  done
}

kill_sleepers() { for p in $sleepers; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; sleepers=""; }

echo "# cgroup2 controllers: $(cat $cg/cgroup.controllers)"

# 1. The parent holds processes: domain controllers cannot be enabled below it (EBUSY).
mkdir $cg/t1
sleeper_in $cg/t1
bundle b1 /t1/c '{"memory": {"limit": 67108864}}'
run_brig internal b1
expect_refused internal "linux.resources.memory: the memory controller cannot be enabled for $cg/t1/c: $cg/t1 holds processes (cgroup v2 no-internal-processes rule)" $cg/t1/c
#    Threaded controllers only: the cgroup is made threaded (as runc does) and the container runs.
bundle b1p /t1/c '{"pids": {"limit": 100}}'
run_brig internal-pids b1p
check "internal-pids: runs with only a pids limit (exit 0)" [ "$status" = 0 ]
check "internal-pids: no state directory" [ ! -e "$state/internal-pids" ]
check "internal-pids: no cgroup $cg/t1/c" [ ! -e $cg/t1/c ]
check "internal-pids: no process left" no_new_process
kill_sleepers
cleanup_case $cg/t1

# 2. Threaded cgroups with domain controllers (runc: cannot enter cgroupv2 … with domain controllers).
mkdir -p $cg/t2/c
echo threaded > $cg/t2/c/cgroup.type
bundle b2 /t2/c '{"memory": {"limit": 67108864}}'
run_brig threaded b2
expect_refused threaded "linux.resources.memory: cannot enter cgroupv2 \"$cg/t2/c\" with domain controllers -- it is in threaded mode"
check "threaded: the pre-existing cgroup is kept" [ -d $cg/t2/c ]
bundle b2i /t2/c/d '{"blockIO": {"weight": 100}}'
run_brig invalid b2i
expect_refused invalid "linux.resources.blockIO: cannot enter cgroupv2 \"$cg/t2/c/d\" with domain controllers -- it is in an invalid state ($cg/t2/c is in threaded mode)" $cg/t2/c/d
cleanup_case $cg/t2

# 3. A controller not delegated: uid 1000 owns /d1/d2, /d1 passes on memory and pids only.
mkdir -p $cg/d1/d2 "$work/rl"
echo "+memory +pids" > $cg/d1/cgroup.subtree_control
chown -R 1000:1000 $cg/d1/d2 "$work/rl"
bundle b3 /d1/d2/c '{"cpu": {"quota": 50000, "period": 100000}}' rootless
AS=rootless run_brig delegation b3
expect_refused delegation "linux.resources.cpu: the cpu controller is not delegated to $cg/d1/d2: $cg/d1/cgroup.subtree_control does not enable it and uid 1000 may not write it" $cg/d1/d2/c
cleanup_case $cg/d1

#    A controller the cgroup2 hierarchy does not have: rdma, moved to a cgroup v1 hierarchy.
mkdir -p "$work/rdma"
if echo -rdma > $cg/cgroup.subtree_control && mount -t cgroup -o rdma rdma "$work/rdma"; then
  bundle b3k /k/c '{"rdma": {"mlx4_0": {"hcaHandles": 1}}}'
  run_brig kernel b3k
  expect_refused kernel "linux.resources.rdma: the rdma controller is not available on this host: $cg/cgroup.controllers does not list it" $cg/k
  cleanup_case $cg/k
  umount "$work/rdma"
else
  not_ok "kernel: could not move rdma to a cgroup v1 hierarchy ($(cat $cg/cgroup.controllers))"
fi
echo +rdma > $cg/cgroup.subtree_control 2>/dev/null

# 4. Hierarchy limits (mkdir: EAGAIN).
mkdir $cg/t4
echo 0 > $cg/t4/cgroup.max.descendants
bundle b4 /t4/c '{}'
run_brig descendants b4
expect_refused descendants "cannot create cgroup $cg/t4/c: $cg/t4/cgroup.max.descendants is 0 and $cg/t4 already has 0 descendant cgroup(s)" $cg/t4/c
cleanup_case $cg/t4
mkdir $cg/t5
echo 1 > $cg/t5/cgroup.max.depth
bundle b5 /t5/x/y '{}'
run_brig depth b5
expect_refused depth "cannot create cgroup $cg/t5/x/y: $cg/t5/cgroup.max.depth is 1 and $cg/t5/x/y would be 2 level(s) below $cg/t5" $cg/t5/x
cleanup_case $cg/t5

# 5. A frozen cgroup (runc: container's cgroup unexpectedly frozen); `run -d` must not block.
mkdir $cg/t6
echo 1 > $cg/t6/cgroup.freeze
bundle b6 /t6 '{}'
run_brig frozen b6 -d
expect_refused frozen "container's cgroup unexpectedly frozen: $cg/t6 ($cg/t6/cgroup.freeze is 1"
check "frozen: the pre-existing cgroup is kept" [ -d $cg/t6 ]
cleanup_case $cg/t6
mkdir -p $cg/t6
echo 1 > $cg/t6/cgroup.freeze
bundle b6c /t6/c '{}'
run_brig frozen-below b6c -d
expect_refused frozen-below "container's cgroup unexpectedly frozen: $cg/t6/c ($cg/t6/cgroup.freeze is 1" $cg/t6/c
cleanup_case $cg/t6

# A non-empty pre-existing cgroup: a warning (runc 1.1), the container runs, the cgroup and its
# process are left alone.
mkdir $cg/t7
sleeper_in $cg/t7
bundle b7 /t7 '{}'
run_brig nonempty b7
check "nonempty: runs (exit 0)" [ "$status" = 0 ]
case "$err" in *"container's cgroup is not empty: 1 process(es) found"*) ok "nonempty: warns" ;; *) not_ok "nonempty: warns" ;; esac
check "nonempty: the cgroup and its process are kept" [ "$(cat $cg/t7/cgroup.procs)" = "${sleepers# }" ]
check "nonempty: no state directory" [ ! -e "$state/nonempty" ]
check "nonempty: no process left" no_new_process
kill_sleepers
cleanup_case $cg/t7

rm -rf "$work"
echo "1..$checks"
[ "$failures" = 0 ] || { echo "# $failures of $checks checks failed"; exit 1; }
echo "# all $checks checks passed"
