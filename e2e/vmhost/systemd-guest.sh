#!/bin/sh
# Inside the VM test host with systemd as PID 1 (e2e/vmhost/systemd.sh runs it): the systemd
# cgroup driver (--systemd-cgroup) of a runtime, checked through systemd's own view of the unit.
#   sh e2e/vmhost/systemd-guest.sh RUNTIME PREFIX
# RUNTIME is brig or /usr/sbin/runc (the comparison), PREFIX its default scope prefix (brig,
# runc). Prints TAP; exits non-zero when a check fails.
set -u
rt=$1 prefix=$2
cg=/sys/fs/cgroup
work=$(mktemp -d /tmp/sd.XXXXXX)
state=$work/state
rootfs=$(pwd)/.cache/rootfs
failures=0 checks=0
[ "$(cat /proc/1/comm)" = systemd ] || { echo "PID 1 is not systemd (e2e/vmhost/run --layout systemd)"; exit 2; }
chmod 0755 "$work"
ok() { checks=$((checks + 1)); echo "ok $checks - $1"; }
not_ok() { checks=$((checks + 1)); failures=$((failures + 1)); echo "not ok $checks - $1"; }
check() { d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }
equals() { [ "$1" = "$2" ] || { echo "#   got \"$1\", want \"$2\""; return 1; }; }
r() { timeout 120 "$rt" --root "$state" --systemd-cgroup "$@"; }
prop() { systemctl show -P "$2" "$1" 2>/dev/null; }

# bundle NAME CGROUPS_PATH RESOURCES_JSON ARGS…: a bundle running ARGS with those resources.
bundle() {
  b=$work/$1 path=$2 res=$3; shift 3
  mkdir -p "$b"
  ( cd "$b" && brig spec ) && cp -a "$rootfs" "$b/rootfs"  # runc refuses a symlinked rootfs
  python3 - "$b/config.json" "$path" "$res" "$@" <<'PY'
import json, sys
f, path, res, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
c = json.load(open(f))
c["process"]["terminal"] = False
c["process"]["args"] = args
if path:
    c["linux"]["cgroupsPath"] = path
c["linux"]["resources"].update(json.loads(res))
json.dump(c, open(f, "w"))
PY
}
status_of() { r state "$1" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])' 2>/dev/null || echo gone; }
wait_status() { # wait_status ID STATUS
  for _ in $(seq 1 100); do [ "$(status_of "$1")" = "$2" ] && return 0; sleep 0.2; done
  echo "#   $1 is $(status_of "$1"), not $2"; return 1
}
unit_gone() { # the unit is not active (stopped and collected, or inactive)
  s=$(systemctl is-active "$1" 2>/dev/null); [ "$s" != active ] && [ "$s" != activating ] || { echo "#   $1 is $s"; return 1; }
}

echo "# $($rt --version | head -1); systemd $(systemctl --version | head -1 | cut -d' ' -f2); caller in $(cut -d: -f3 /proc/self/cgroup)"

# 1. A container with limits: the scope is a unit systemd knows, with the limits as properties and files.
res='{"memory":{"limit":67108864,"swap":134217728},"pids":{"limit":64},"cpu":{"shares":512,"quota":50000,"period":100000,"cpus":"0"}}'
# (a shell that exits on SIGTERM: as pid 1 of its namespace, sleep would ignore systemctl stop's TERM)
bundle b1 "" "$res" sh -c "trap 'exit 0' TERM; sleep 1000 & wait"
id=sd1-$$
unit=$prefix-$id.scope
dir=$cg/system.slice/$unit
if r run -d --bundle "$work/b1" "$id" > "$work/run.out" 2>&1; then ok "run -d with --systemd-cgroup"; else not_ok "run -d with --systemd-cgroup: $(cat "$work/run.out")"; fi
pid=$(r state "$id" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])' 2>/dev/null)
check "systemctl: $unit is active" equals "$(systemctl is-active "$unit")" active
systemctl status --no-pager "$unit" > "$work/status" 2>&1
sed 's/^/#   /' "$work/status" | head -12
check "systemctl status lists the container's process" grep -q "$pid" "$work/status"
check "the container's process is in $dir" grep -qx "$pid" "$dir/cgroup.procs"
check "Delegate=yes" equals "$(prop "$unit" Delegate)" yes
check "Slice=system.slice" equals "$(prop "$unit" Slice)" system.slice
check "MemoryMax (property)" equals "$(prop "$unit" MemoryMax)" 67108864
check "MemorySwapMax (property)" equals "$(prop "$unit" MemorySwapMax)" 67108864
check "TasksMax (property)" equals "$(prop "$unit" TasksMax)" 64
check "CPUWeight (property)" equals "$(prop "$unit" CPUWeight)" 20
check "CPUQuotaPerSecUSec (property)" equals "$(prop "$unit" CPUQuotaPerSecUSec)" 500ms
check "AllowedCPUs (property)" equals "$(prop "$unit" AllowedCPUs)" 0
check "DevicePolicy=strict" equals "$(prop "$unit" DevicePolicy)" strict
check "memory.max (file)" equals "$(cat "$dir/memory.max")" 67108864
check "memory.swap.max (file)" equals "$(cat "$dir/memory.swap.max")" 67108864
check "pids.max (file)" equals "$(cat "$dir/pids.max")" 64
check "cpu.max (file)" equals "$(cat "$dir/cpu.max")" "50000 100000"
check "cpuset.cpus (file)" equals "$(cat "$dir/cpuset.cpus")" 0

# 2. update: the property and the file change together.
check "update --memory 128M --pids-limit 99" r update --memory 134217728 --pids-limit 99 "$id"
check "MemoryMax after update (property)" equals "$(prop "$unit" MemoryMax)" 134217728
check "memory.max after update (file)" equals "$(cat "$dir/memory.max")" 134217728
check "TasksMax after update (property)" equals "$(prop "$unit" TasksMax)" 99

# 3. pause/resume through the freezer of the unit's cgroup.
check "pause" r pause "$id"
check "paused" equals "$(status_of "$id")" paused
check "cgroup.freeze is 1" equals "$(cat "$dir/cgroup.freeze")" 1
check "resume" r resume "$id"
check "running again" equals "$(status_of "$id")" running

# 4. exec joins the unit's cgroup.
check "exec in the unit's cgroup" sh -c "timeout 60 $rt --root $state --systemd-cgroup exec $id cat /proc/self/cgroup | grep -q '^0::/'"

# 5. systemctl stop of the scope stops the container; delete then leaves nothing.
check "systemctl stop $unit" systemctl stop "$unit"
check "the container is stopped" wait_status "$id" stopped
check "delete" r delete "$id"
check "no unit left" unit_gone "$unit"
check "no cgroup left" test ! -d "$dir"

# 6. delete --force of a running container stops its unit.
bundle b2 "system.slice:sdtest:$$" '{}' sleep 1000
check "run -d with cgroupsPath system.slice:sdtest:$$" r run -d --bundle "$work/b2" "sd2-$$"
check "the unit is sdtest-$$.scope" equals "$(systemctl is-active "sdtest-$$.scope")" active
# 7. A second container with the same unit: systemd refuses, the error names the unit, nothing is left.
bundle b3 "system.slice:sdtest:$$" '{}' true
if r run --bundle "$work/b3" "sd3-$$" > "$work/dup.out" 2>&1; then not_ok "a unit that exists is refused"; else
  if grep -q "sdtest-$$.scope" "$work/dup.out"; then ok "a unit that exists is refused, naming it"; else not_ok "refusal names the unit: $(cat "$work/dup.out")"; fi
fi
sed 's/^/#   /' "$work/dup.out"
check "the refused container left no state" equals "$(status_of "sd3-$$")" gone
check "the first container still runs" equals "$(systemctl is-active "sdtest-$$.scope")" active
check "delete --force" r delete --force "sd2-$$"
check "its unit is stopped" unit_gone "sdtest-$$.scope"

# 8. org.systemd.property.* annotations become unit properties (runc's value form); a bad one is
#    refused, naming it, and leaves nothing.
bundle b5 "system.slice:sdann:$$" '{}' sleep 1000
python3 - "$work/b5/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["annotations"] = {"org.systemd.property.TimeoutStopSec": "7", "org.systemd.property.CollectMode": "'inactive-or-failed'"}
json.dump(c, open(sys.argv[1], "w"))
PY
check "run -d with org.systemd.property annotations" r run -d --bundle "$work/b5" "sd5-$$"
check "TimeoutStopSec=7 -> TimeoutStopUSec" equals "$(prop "sdann-$$.scope" TimeoutStopUSec)" 7s
check "CollectMode='inactive-or-failed'" equals "$(prop "sdann-$$.scope" CollectMode)" inactive-or-failed
check "delete --force" r delete --force "sd5-$$"
sed -i 's/"7"/"\x27seven\x27"/' "$work/b5/config.json"
if r run -d --bundle "$work/b5" "sd6-$$" > "$work/ann.out" 2>&1; then not_ok "a bad annotation is refused"; else
  if grep -q "org.systemd.property.TimeoutStopSec" "$work/ann.out"; then ok "a bad annotation is refused, naming it"; else not_ok "refusal names the annotation: $(cat "$work/ann.out")"; fi
fi
sed 's/^/#   /' "$work/ann.out"
check "the refused container left no state" equals "$(status_of "sd6-$$")" gone
check "and no unit" unit_gone "sdann-$$.scope"

# 9. A brig killed once the container was parked: delete --force still stops the unit (brig only:
#    its crash points).
if [ "$prefix" = brig ]; then
  bundle b4 "" '{}' sleep 1000
  BRIG_TEST_MODE=crash BRIG_TEST_KILL_AT=create.ready r create --bundle "$work/b4" "sd4-$$" > /dev/null 2>&1
  check "killed brig left the unit running" equals "$(systemctl is-active "brig-sd4-$$.scope")" active
  check "delete --force after a killed brig" r delete --force "sd4-$$"
  check "its unit is stopped" unit_gone "brig-sd4-$$.scope"
  check "its cgroup is gone" test ! -d "$cg/system.slice/brig-sd4-$$.scope"
fi

echo "1..$checks"
rm -rf "$work"
[ "$failures" = 0 ]
