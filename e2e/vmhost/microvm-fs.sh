#!/bin/sh
# Host bind mounts in a microvm container end to end in the VM test host (virtio-fs served by
# brig's VMM, docs/microvm.md "Bind mounts"): a directory bind read and written both ways with
# the ownership the guest asked for, a file bind (/etc/hosts style), a read-only bind that
# refuses writes (and noexec), symlink and `..` escapes from inside the guest that find nothing of
# the host's, and nothing left after delete (no monitor, no state, no fd on the shared paths).
#
#   e2e/vmhost/microvm-fs.sh [e2e/vmhost/run options]     # on the host
#
# Needs brig's guest kernel with FUSE_FS and VIRTIO_FS (scripts/build-guest-kernel.sh) and the
# release brig and brig-agent. Prints TAP; exits non-zero if a case failed.
set -u
if [ "${1:-}" != --in-vm ]; then
  here=$(cd "$(dirname "$0")" && pwd)
  guest=$(sh "$here/microvm-guest.sh") || exit 2
  exec sh "$here/run" --modules "kvm_amd" --copy "$guest" "$@" -- sh e2e/vmhost/microvm-fs.sh --in-vm
fi

G=/work/repo/.build/microvm-guest
export BRIG_VM_KERNEL=$G/vmlinux BRIG_VM_INITRD=$G/agent.initrd
ROOT=/run/brig-fs-e2e
W=$(mktemp -d /tmp/fs.XXXXXX)
n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
fail() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "$l" | sed 's/^/#   /'; done; }
check() { if eval "$2"; then ok "$1"; else fail "$1" "$(tail -30 "$W/out" 2>/dev/null)"; fi; }
mvm() { timeout -k 5 400 /work/repo/.build/release/brig --root "$ROOT" --backend microvm "$@"; }

# The host side: a read-write directory, a hosts file, a read-only directory, a host secret
# next to them that the guest must never reach.
mkdir -p "$W/data/sub" "$W/ro" "$W/outside"
echo "from the host" > "$W/data/hello"
chmod 0777 "$W/data"
printf '127.0.0.1 localhost\n10.9.8.7 brig-fs-test\n' > "$W/hosts"
echo "read only" > "$W/ro/file"
cp /work/repo/.cache/rootfs/bin/busybox "$W/ro/busybox"   # the container's own (static) busybox
cp /work/repo/.cache/rootfs/bin/busybox "$W/data/busybox"
echo "host secret" > "$W/outside/secret"
ln -s "$W/outside" "$W/data/abs-out"
ln -s ../outside "$W/data/rel-out"

# bundle NAME SCRIPT: a busybox bundle with the three binds running SCRIPT (sh -c).
bundle() {
  d=$W/$1
  mkdir -p "$d" && cp -a /work/repo/.cache/rootfs "$d/rootfs" && (cd "$d" && /work/repo/.build/release/brig spec) || return 1
  printf '%s\n' "$2" > "$d/rootfs/test.sh"
  python3 - "$d/config.json" "$W" <<'PY'
import json, sys
p, w = sys.argv[1], sys.argv[2]
s = json.load(open(p))
s["process"]["terminal"] = False
s["process"]["args"] = ["sh", "/test.sh"]
s["root"]["readonly"] = False
for k in ("bounding", "effective", "permitted"):  # chown in the guest (not in brig spec's default set)
    s["process"]["capabilities"][k] = s["process"]["capabilities"].get(k, []) + ["CAP_CHOWN"]
s["mounts"] += [
    {"destination": "/data", "type": "bind", "source": w + "/data", "options": ["rbind", "rw", "nosuid", "nodev"]},
    {"destination": "/etc/hosts", "type": "bind", "source": w + "/hosts", "options": ["bind", "rw"]},
    {"destination": "/ro", "type": "bind", "source": w + "/ro", "options": ["rbind", "ro", "nosuid", "nodev", "noexec"]},
]
json.dump(s, open(p, "w"))
PY
  echo "$d"
}

script='
echo "READ:$(cat /data/hello)"
echo "HOSTS:$(grep brig-fs-test /etc/hosts)"
echo "from the guest" > /data/new && echo WROTE
mkdir /data/newdir && chown 1234:5678 /data/newdir && echo CHOWNED
echo "appended in guest" >> /etc/hosts && echo HOSTS-WRITTEN
echo x > /ro/x 2>/dev/null || echo RO-REFUSED
rm /ro/file 2>/dev/null || echo RO-RM-REFUSED
/ro/busybox true 2>/dev/null || echo NOEXEC-REFUSED
/data/busybox true && echo EXEC-OK
cat /data/abs-out/secret 2>/dev/null && echo ESCAPED-ABS
cat /data/rel-out/secret 2>/dev/null && echo ESCAPED-REL
cat /data/../outside/secret 2>/dev/null && echo ESCAPED-DOTDOT
ln -s / /data/up && ls /data/up/ > /data/up-listing; grep -q "^test.sh$" /data/up-listing && echo UP-IS-GUEST-ROOT
mv /data/new /data/renamed && echo RENAMED
grep -q virtiofs /proc/mounts && echo MOUNTED-VIRTIOFS
ls /data/sub >/dev/null && echo LISTED
echo DONE
sleep 600
'
b=$(bundle fs1 "$script")
mvm create --bundle "$b" fs1 > "$W/out" 2>&1; rc=$?
check "create with three binds" '[ $rc -eq 0 ]'
mvm start fs1 >> "$W/out" 2>&1
i=0; while [ $i -lt 900 ] && ! grep -q DONE "$W/out"; do sleep 0.2; i=$((i + 1)); done
check "the container ran its checks" 'grep -q DONE "$W/out"'
check "the directory bind reads the host's file" 'grep -q "READ:from the host" "$W/out"'
check "the file bind is the host's /etc/hosts-style file" 'grep -q "HOSTS:10.9.8.7 brig-fs-test" "$W/out"'
check "a file written in the guest is on the host" '[ "$(cat "$W/data/renamed" 2>/dev/null)" = "from the guest" ] && [ ! -e "$W/data/new" ]'
check "it is owned by the guest root (0:0)" '[ "$(stat -c %u:%g "$W/data/renamed")" = 0:0 ]'
check "chown in the guest is the host ownership" '[ "$(stat -c %u:%g "$W/data/newdir" 2>/dev/null)" = 1234:5678 ]'
mvm exec --user 65534:65534 fs1 sh -c "echo by-nobody > /data/nobody-file" >> "$W/out" 2>&1
check "a file created by an unprivileged guest user is owned by that uid on the host" '[ "$(stat -c %u:%g "$W/data/nobody-file" 2>/dev/null)" = 65534:65534 ]'
check "the file bind was written through" 'grep -q "appended in guest" "$W/hosts"'
check "the read-only bind refuses writes (guest)" 'grep -q RO-REFUSED "$W/out" && grep -q RO-RM-REFUSED "$W/out"'
check "the read-only bind is untouched on the host" '[ ! -e "$W/ro/x" ] && [ "$(cat "$W/ro/file")" = "read only" ]'
check "noexec is honoured (the same binary runs from the rw bind)" 'grep -q NOEXEC-REFUSED "$W/out" && grep -q EXEC-OK "$W/out"'
check "symlinks and .. in the share never reach the host" '! grep -q ESCAPED "$W/out" && grep -q UP-IS-GUEST-ROOT "$W/out"'
check "the share is virtio-fs" 'grep -q MOUNTED-VIRTIOFS "$W/out" && grep -q LISTED "$W/out"'
held() { for p in /proc/[0-9]*; do ls -l "$p/fd" 2>/dev/null; done | grep -Eq "$W/(data|ro|hosts)"; }
check "the VMM holds the shared paths while it runs" held
mvm delete --force fs1 >> "$W/out" 2>&1
check "after delete --force: no state, nothing holding the shared paths" '! mvm state fs1 >/dev/null 2>&1 && ! held'

# A bind of a device node is refused naming the field, leaving nothing.
b=$(bundle fs3 'true')
python3 -c 'import json,sys; p=sys.argv[1]; s=json.load(open(p)); s["mounts"].append({"destination": "/dev/x", "type": "bind", "source": "/dev/null", "options": ["bind"]}); json.dump(s,open(p,"w"))' "$b/config.json"
mvm create --bundle "$b" fs3 > "$W/out" 2>&1; rc=$?
check "a device-node bind is refused naming mounts[N].source" '[ $rc -ne 0 ] && grep -q "mounts\[[0-9]*\].source" "$W/out" && ! mvm state fs3 >/dev/null 2>&1'

# A read-only root with bind destinations missing from it (/data and /ro here, a new file, a path
# through a symlink that names a host directory): brig creates them in the rootfs before the
# image is built, as runc does before it makes the root read-only, and never outside the rootfs.
b=$(bundle fs4 '
cat /ro/file && echo NEWDIR-OK
grep -q brig-fs-test /etc/brig-new && echo NEWFILE-OK
grep -q brig-fs-test /esc/planted && echo THROUGH-SYMLINK-OK
touch /rootfile 2>/dev/null || echo ROOT-RO
echo DONE
sleep 600')
ln -s "$W/outside" "$b/rootfs/esc"
python3 - "$b/config.json" "$W" <<'PY'
import json, sys
p, w = sys.argv[1], sys.argv[2]
s = json.load(open(p))
s["root"]["readonly"] = True
s["mounts"] += [
    {"destination": "/etc/brig-new", "type": "bind", "source": w + "/hosts", "options": ["bind", "ro"]},
    {"destination": "/esc/planted", "type": "bind", "source": w + "/hosts", "options": ["bind", "ro"]},
]
json.dump(s, open(p, "w"))
PY
mvm create --bundle "$b" fs4 > "$W/out" 2>&1; rc=$?
mvm start fs4 >> "$W/out" 2>&1
i=0; while [ $i -lt 900 ] && ! grep -q DONE "$W/out"; do sleep 0.2; i=$((i + 1)); done
check "read-only root: binds on destinations it lacks work" '[ $rc -eq 0 ] && grep -q NEWDIR-OK "$W/out" && grep -q NEWFILE-OK "$W/out" && grep -q THROUGH-SYMLINK-OK "$W/out" && grep -q ROOT-RO "$W/out"'
check "the mount points were created inside the rootfs, nothing through the symlink on the host" \
  '[ -d "$b/rootfs/data" ] && [ -f "$b/rootfs/etc/brig-new" ] && [ -f "$b/rootfs$W/outside/planted" ] && [ ! -e "$W/outside/planted" ]'
mvm delete --force fs4 >> "$W/out" 2>&1

echo "1..$n"
[ $failed -eq 0 ]
