#!/bin/sh
# Inside the VM test host with systemd as PID 1, as the user, in a scope of the user's manager
# (e2e/vmhost/systemd-user.sh runs it there): the systemd cgroup driver rootless, i.e. through
# the user's manager (`--systemd-cgroup` as uid 1000), checked through `systemctl --user`.
#   sh e2e/vmhost/systemd-user.sh sh e2e/vmhost/systemd-rootless.sh RUNTIME PREFIX
# Prints TAP; exits non-zero when a check fails.
set -u
rt=$1 prefix=$2
work=$(mktemp -d /tmp/sdu.XXXXXX)
rootfs=$(pwd)/.cache/rootfs
failures=0 checks=0
ok() { checks=$((checks + 1)); echo "ok $checks - $1"; }
not_ok() { checks=$((checks + 1)); failures=$((failures + 1)); echo "not ok $checks - $1"; }
check() { d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }
equals() { [ "$1" = "$2" ] || { echo "#   got \"$1\", want \"$2\""; return 1; }; }
r() { timeout 120 "$rt" --root "$work/state" --systemd-cgroup "$@"; }
prop() { systemctl --user show -P "$2" "$1" 2>/dev/null; }
status_of() { r state "$1" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])' 2>/dev/null || echo gone; }
wait_status() {
  for _ in $(seq 1 100); do [ "$(status_of "$1")" = "$2" ] && return 0; sleep 0.2; done
  echo "#   $1 is $(status_of "$1"), not $2"; return 1
}
unit_gone() { s=$(systemctl --user is-active "$1" 2>/dev/null); [ "$s" != active ] && [ "$s" != activating ] || { echo "#   $1 is $s"; return 1; }; }
# bundle NAME CGROUPS_PATH RESOURCES_JSON ARGS…: a rootless bundle (a user namespace mapping
# this user to root, as conformance/run --rootless makes them).
bundle() {
  b=$work/$1 path=$2 res=$3; shift 3
  mkdir -p "$b"
  ( cd "$b" && brig spec ) && cp -a "$rootfs" "$b/rootfs"
  python3 - "$b/config.json" "$path" "$res" "$@" <<'PY'
import json, os, sys
f, path, res, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
c = json.load(open(f))
c["process"]["terminal"] = False
c["process"]["args"] = args
lx = c["linux"]
if path:
    lx["cgroupsPath"] = path
lx["resources"] = json.loads(res)
lx["namespaces"].append({"type": "user"})
lx["uidMappings"] = [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
lx["gidMappings"] = [{"containerID": 0, "hostID": os.getegid(), "size": 1}]
for m in c["mounts"]:
    m["options"] = [o for o in m.get("options", []) if not o.startswith(("uid=", "gid="))]
json.dump(c, open(f, "w"))
PY
}

mgr=$(systemctl --user show -P ControlGroup)
echo "# $($rt --version | head -1); uid $(id -u); caller in $(cut -d: -f3 /proc/self/cgroup); user manager at $mgr"
check "the caller is in the user's delegated tree" sh -c "cut -d: -f3 /proc/self/cgroup | grep -q '^$mgr/'"

res='{"memory":{"limit":67108864},"pids":{"limit":64},"cpu":{"shares":512,"quota":50000,"period":100000}}'
bundle b1 "" "$res" sh -c "trap 'exit 0' TERM; sleep 1000 & wait"
id=sdu1-$$
unit=$prefix-$id.scope
if r run -d --bundle "$work/b1" "$id" > "$work/run.out" 2>&1; then ok "rootless run -d with --systemd-cgroup"; else
  not_ok "rootless run -d with --systemd-cgroup: $(cat "$work/run.out")"; fi
pid=$(r state "$id" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])' 2>/dev/null)
check "systemctl --user: $unit is active" equals "$(systemctl --user is-active "$unit")" active
dir=/sys/fs/cgroup$(prop "$unit" ControlGroup)
systemctl --user status --no-pager "$unit" 2>&1 | head -8 | sed 's/^/#   /'
check "the unit is in the user's manager ($mgr/user.slice)" equals "$(dirname "$dir")" "/sys/fs/cgroup$mgr/user.slice"
check "the container's process is in the unit's cgroup" grep -qx "$pid" "$dir/cgroup.procs"
check "Delegate=yes" equals "$(prop "$unit" Delegate)" yes
check "MemoryMax (property)" equals "$(prop "$unit" MemoryMax)" 67108864
check "TasksMax (property)" equals "$(prop "$unit" TasksMax)" 64
check "CPUQuotaPerSecUSec (property)" equals "$(prop "$unit" CPUQuotaPerSecUSec)" 500ms
check "memory.max (file)" equals "$(cat "$dir/memory.max")" 67108864
check "pids.max (file)" equals "$(cat "$dir/pids.max")" 64
check "update --memory 128M" r update --memory 134217728 "$id"
check "MemoryMax after update (property)" equals "$(prop "$unit" MemoryMax)" 134217728
check "memory.max after update (file)" equals "$(cat "$dir/memory.max")" 134217728
check "exec" sh -c "timeout 60 $rt --root $work/state --systemd-cgroup exec $id true"
check "systemctl --user stop $unit" systemctl --user stop "$unit"
check "the container is stopped" wait_status "$id" stopped
check "delete" r delete "$id"
check "no unit left" unit_gone "$unit"
check "no cgroup left" test ! -d "$dir"

# delete --force of a running container stops its unit.
bundle b2 "user.slice:sdutest:$$" '{}' sleep 1000
check "run -d with cgroupsPath user.slice:sdutest:$$" r run -d --bundle "$work/b2" "sdu2-$$"
check "the unit is sdutest-$$.scope" equals "$(systemctl --user is-active "sdutest-$$.scope")" active
check "delete --force" r delete --force "sdu2-$$"
check "its unit is stopped" unit_gone "sdutest-$$.scope"

echo "1..$checks"
rm -rf "$work"
[ "$failures" = 0 ]
