#!/bin/sh
# Inside the VM test host (layout systemd, /dev/kvm from --modules kvm_amd, the microvm guest
# from microvm-guest.sh copied in): podman 4.3 + conmon with brig's microvm backend over KVM.
# podman's own binds (/etc/hosts, /etc/resolv.conf, /etc/hostname, /run/.containerenv, /dev/shm)
# reach the guest over virtio-fs; a volume is read and written both ways; --read-only (the
# binds' mount points made in the rootfs) too.
#   sh e2e/vmhost/podman-microvm.sh GUEST_DIR
# Private storage and state under a temp dir, a busybox image imported from .cache/rootfs.
# Prints TAP; exits non-zero when a check fails.
set -u
guest=$1
work=$(mktemp -d /tmp/pmv.XXXXXX)
checks=0 failures=0 start=$(date +%s)
ok() { checks=$((checks + 1)); echo "ok $checks - podman, brig microvm: $1"; }
not_ok() { checks=$((checks + 1)); failures=$((failures + 1)); echo "not ok $checks - podman, brig microvm: $1"; }
# check DESCRIPTION GOT WANT: GOT's output shown when it differs.
check() { if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1"; printf '%s\n' "$2" | tail -15 | sed 's/^/#   /'; echo "#   want: $3"; fi; }
podman_() { timeout 300 podman --root "$work/storage" --runroot "$work/run" --storage-driver vfs "$@"; }
trap 'podman_ rm -af -t 0 >/dev/null 2>&1; rm -rf "$work" 2>/dev/null' EXIT

# The runtime podman runs: brig with the microvm backend, this guest's kernel and agent.
cat > "$work/brig-microvm-kvm" <<EOF
#!/bin/sh
BRIG_BACKEND=microvm BRIG_VM_KERNEL=$guest/vmlinux BRIG_VM_INITRD=$guest/agent.initrd exec $(pwd)/.build/release/brig "\$@"
EOF
chmod +x "$work/brig-microvm-kvm"
cat > "$work/containers.conf" <<CONF
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "brig-microvm-kvm"
[engine.runtimes]
brig-microvm-kvm = ["$work/brig-microvm-kvm"]
CONF
export CONTAINERS_CONF=$work/containers.conf
tar -C "$(pwd)/.cache/rootfs" -cf "$work/busybox.tar" .
podman_ import -q "$work/busybox.tar" localhost/busybox:latest > "$work/import.out" 2>&1 || not_ok "podman import: $(cat "$work/import.out")"
img=localhost/busybox:latest

# Two containers (each is a VM boot, slow under emulation). The first: podman's binds and a
# volume, its exit code. (podman writes /etc/hostname without a newline; it binds
# /etc/resolv.conf only with a network, and this image has no CNI plugins for podman's default
# network: the microvm's network from a netns path is microvm-net.sh's.)
mkdir -p "$work/vol" && echo from-host > "$work/vol/in"
out=$(podman_ run --rm --network none --hostname pmv-host --add-host brig-vfs:10.1.2.3 -v "$work/vol:/vol" $img sh -c '
  [ "$(uname -r)" != "$0" ] && echo other-kernel
  grep -o brig-vfs /etc/hosts; echo "$(cat /etc/hostname)"; [ -f /run/.containerenv ] && echo containerenv
  grep -cE " /etc/(hosts|hostname) virtiofs " /proc/mounts
  cat /vol/in; echo from-guest > /vol/out; exit 7' "$(uname -r)" 2>&1)
rc=$?
check "run --rm: in a VM (its own kernel), podman's /etc/hosts, /etc/hostname, /run/.containerenv over virtio-fs, a volume" \
  "$out" "other-kernel
brig-vfs
pmv-host
containerenv
2
from-host"
check "the exit code propagates" "$rc" 7
check "what the guest wrote in the volume is on the host" "$(cat "$work/vol/out" 2>&1)" from-guest
# The second: --read-only (the binds' mount points are made in the rootfs), run -d, exec, stop.
cid=$(podman_ run -d --network none --read-only -v "$work/vol:/vol" $img sh -c 'trap "exit 0" TERM; sleep 1000 & wait' 2> "$work/run.err")
check "run -d --read-only" "$([ -n "$cid" ] && echo started || cat "$work/run.err")" started
check "exec: the root is read-only, /tmp and the volume writable, /etc/hosts bound" \
  "$(podman_ exec "$cid" sh -c 'touch /x 2>/dev/null || echo ro; touch /tmp/y && echo tmp; grep -q localhost /etc/hosts && echo hosts; echo again > /vol/out2 && echo vol' 2>&1)" \
  "ro
tmp
hosts
vol"
check "stop (TERM)" "$(podman_ stop -t 20 "$cid" > /dev/null 2>&1; podman_ inspect --format '{{.State.ExitCode}}' "$cid" 2>&1)" 0
podman_ rm -f "$cid" > /dev/null 2>&1
check "nothing left: no VM monitor" "$(pgrep -f 'brig.* vm-monitor' | wc -l)" 0
echo "# $(( $(date +%s) - start )) s"

echo "1..$checks"
[ "$failures" = 0 ]
