#!/bin/sh
# Builds a busybox-static root filesystem for demos and tests: make-rootfs.sh DIR
# (needs Debian's busybox-static). Idempotent and fast (~50 ms).
set -eu
dir=${1:?usage: make-rootfs.sh DIR}
case "$dir" in /*) ;; *) dir="$(pwd)/$dir" ;; esac
bb=/bin/busybox
[ -x "$bb" ] || { echo "make-rootfs: $bb not found (apt-get install busybox-static)" >&2; exit 1; }
file -L "$bb" 2>/dev/null | grep -q 'statically linked' || ldd "$bb" 2>&1 | grep -q 'not a dynamic' || {
  echo "make-rootfs: $bb is not statically linked (install busybox-static)" >&2; exit 1; }
rm -rf "$dir.tmp"
mkdir -p "$dir.tmp"
cd "$dir.tmp"
mkdir -p bin sbin etc proc sys dev tmp root home/user usr/bin usr/sbin var/tmp
chmod 1777 tmp var/tmp
cp "$bb" bin/busybox
for applet in $("$bb" --list); do
  [ -e "bin/$applet" ] || ln -s busybox "bin/$applet"
done
cat > etc/passwd <<'P'
root:x:0:0:root:/root:/bin/sh
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat > etc/group <<'G'
root:x:0:
tty:x:5:
users:x:100:user
user:x:1000:
nogroup:x:65534:
G
echo brig-rootfs > etc/hostname
cd ..
rm -rf "$dir"
mv "$dir.tmp" "$dir"
