#!/bin/sh
# Inside the VM test host with systemd as PID 1, as root: podman with --cgroup-manager=systemd
# and containerd with the runc shim's SystemdCgroup (ctr --runc-systemd-cgroup) driving RUNTIME,
# checked through systemd's view of the containers' scopes.
#   sh e2e/vmhost/systemd-engines.sh RUNTIME_PATH
# Private storage, state and sockets under a temp dir; a busybox image imported from the local
# rootfs. Prints TAP; exits non-zero when a check fails.
set -u
. "$(dirname "$0")/../engines/lib.sh"
runtime=$1
name=$(basename "$runtime")
work=$(mktemp -d /tmp/sde.XXXXXX)
failures=0 checks=0
ok() { checks=$((checks + 1)); echo "ok $checks - $name: $1"; }
not_ok() { checks=$((checks + 1)); failures=$((failures + 1)); echo "not ok $checks - $name: $1"; }
check() { d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }
equals() { [ "$1" = "$2" ] || { echo "#   got \"$1\", want \"$2\""; return 1; }; }
prop() { systemctl show -P "$2" "$1" 2>/dev/null; }
quiet() { "$@" > /dev/null 2>&1; }
cleanup() {
  podman_ rm -af -t 0 >/dev/null 2>&1
  [ -n "${ctrd_pid:-}" ] && kill "$ctrd_pid" 2>/dev/null && wait "$ctrd_pid" 2>/dev/null
  rm -rf "$work" 2>/dev/null
}
trap cleanup EXIT
# podman puts conmon in a scope of its own through the system bus.
systemctl start dbus.socket dbus.service >/dev/null 2>&1
grep -q '^messagebus:' /etc/passwd || { echo 'messagebus:x:100:102::/nonexistent:/usr/sbin/nologin' >> /etc/passwd
  echo 'messagebus:x:102:' >> /etc/group; systemctl restart dbus.service; }
tar -C "$(pwd)/.cache/rootfs" -cf "$work/busybox.tar" .

# podman --cgroup-manager=systemd: the container is libpod-<id>.scope in machine.slice.
cat > "$work/containers.conf" <<CONF
[engine]
cgroup_manager = "systemd"
events_logger = "file"
runtime = "$name"
[engine.runtimes]
$name = ["$runtime"]
CONF
export CONTAINERS_CONF=$work/containers.conf
podman_() { timeout 120 podman --root "$work/storage" --runroot "$work/run" --storage-driver vfs --cgroup-manager=systemd "$@"; }
podman_ import -q "$work/busybox.tar" localhost/busybox:latest > "$work/import.out" 2>&1 || {
  not_ok "podman import: $(cat "$work/import.out")"; }
img=localhost/busybox:latest
out=$(podman_ run --rm --network none $img echo hello 2>&1)
check "podman run --rm echo" equals "$out" hello
check "podman: the container's cgroup is a scope in machine.slice" sh -c \
  "podman --root $work/storage --runroot $work/run --storage-driver vfs --cgroup-manager=systemd run --rm --network none $img cat /proc/self/cgroup | grep -q '^0::/$'; \
   podman --root $work/storage --runroot $work/run --storage-driver vfs --cgroup-manager=systemd run --rm --network none --cgroupns host $img cat /proc/self/cgroup | grep -q '^0::/machine.slice/libpod-.*\.scope'"
cid=$(podman_ run -d --network none --memory 64m --pids-limit 50 $img sh -c 'trap "exit 0" TERM; sleep 1000 & wait' 2>"$work/run.err")
check "podman run -d --memory 64m --pids-limit 50" test -n "$cid"
[ -n "$cid" ] || sed 's/^/#   /' "$work/run.err"
unit=libpod-$cid.scope
check "systemctl: $unit is active" equals "$(systemctl is-active "$unit")" active
check "its slice is machine.slice" equals "$(prop "$unit" Slice)" machine.slice
check "MemoryMax (property)" equals "$(prop "$unit" MemoryMax)" 67108864
check "TasksMax (property)" equals "$(prop "$unit" TasksMax)" 50
check "memory.max (file)" equals "$(cat "/sys/fs/cgroup/machine.slice/$unit/memory.max" 2>&1)" 67108864
check "podman exec" equals "$(podman_ exec "$cid" echo in-exec 2>&1)" in-exec
check "podman update --memory 128m" quiet podman_ update --memory 128m "$cid"
check "MemoryMax after update (property)" equals "$(prop "$unit" MemoryMax)" 134217728
check "podman stop" quiet podman_ stop -t 5 "$cid"
check "its scope is gone" sh -c "s=\$(systemctl is-active $unit); [ \"\$s\" != active ]"
podman_ rm -f "$cid" >/dev/null 2>&1

# containerd 1.6, runc shim v2 with SystemdCgroup (ctr --runc-systemd-cgroup; the CRI plugin's
# SystemdCgroup = true sets the same shim option): the container is ctrd-<name>.scope.
busybox_oci_archive "$(pwd)/.cache/rootfs" "$work"
start_containerd "$work"
ctr_ image import --snapshotter native --base-name localhost/busybox "$work/oci.tar" > "$work/import2.out" 2>&1 || not_ok "ctr image import: $(cat "$work/import2.out")"
crun_() { ctr_ run --snapshotter native --runc-binary "$runtime" --runc-systemd-cgroup "$@"; }
check "ctr run --rm echo" equals "$(crun_ --rm --cgroup "system.slice:ctrd:c1-$$" $img c1 echo hello 2>&1)" hello
crun_ -d --memory-limit 67108864 --cgroup "system.slice:ctrd:c2-$$" $img c2 sh -c 'trap "exit 0" TERM; sleep 1000 & wait' > "$work/c2.out" 2>&1
unit=ctrd-c2-$$.scope
check "systemctl: $unit is active" equals "$(systemctl is-active "$unit")" active
[ "$(systemctl is-active "$unit")" = active ] || { sed 's/^/#   /' "$work/c2.out"; tail -5 "$work/containerd.log" | sed 's/^/#   /'; }
check "MemoryMax (property)" equals "$(prop "$unit" MemoryMax)" 67108864
check "ctr task exec" equals "$(ctr_ task exec --exec-id e1 c2 echo in-exec 2>&1)" in-exec
check "ctr task ps" sh -c "ctr --address $work/containerd.sock task ps c2 | busybox awk 'NR>1' | grep -q ."
ctr_ task kill -s SIGTERM c2 >/dev/null 2>&1
for _ in $(seq 50); do [ "$(ctr_ task ls 2>&1 | busybox awk '$1=="c2"{print $3}')" = STOPPED ] && break; sleep 0.2; done
check "kill TERM stops it" equals "$(ctr_ task ls 2>&1 | busybox awk '$1=="c2"{print $3}')" STOPPED
ctr_ task delete c2 >/dev/null 2>&1; ctr_ container delete c2 >/dev/null 2>&1
check "its scope is gone" sh -c "s=\$(systemctl is-active $unit); [ \"\$s\" != active ]"

echo "1..$checks"
[ "$failures" = 0 ]
