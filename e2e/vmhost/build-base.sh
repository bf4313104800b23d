#!/bin/sh
# Builds the VM test host's base (cached under .cache/vmhost/, rebuilt only when its inputs change):
#   vmlinuz     Debian's linux-image-cloud-amd64 kernel (kvm, kvm-amd, overlay… as modules)
#   initrd.gz   busybox + the virtio modules; /init mounts the disks and switch_roots (docs below)
#   base.ext4   the userland: every file of the Debian packages below and their dependencies,
#               copied from this machine's installed packages (so nothing is downloaded)
#   modules/    the kernel's modules, on base.ext4 too, for modprobe-less insmod in the guest
# Prints the cache directory. Usage: build-base.sh [--force]
# VMHOST_CACHE=DIR caches elsewhere (a variant with VMHOST_PACKAGES, e.g. the systemd layout's,
# so it never invalidates the default image).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${VMHOST_CACHE:-$repo/.cache/vmhost}
force=0; [ "${1:-}" = --force ] && force=1

# What the guest runs: busybox for the init, python3 for conformance/run, the peer runtimes,
# iproute2 for networking, util-linux (setpriv, unshare), e2fsprogs (microvm root images),
# kmod, procps, and for benchmarks/microvm.sh hyperfine and QEMU (brig's VMM vs QEMU microvm
# under the guest's KVM; ~140 MB more). Extra packages: VMHOST_PACKAGES="…" (they must be
# installed on this machine).
pkgs="busybox-static dash bash coreutils util-linux mount e2fsprogs iproute2 kmod procps findutils
      grep sed gzip tar python3-minimal libpython3.11-stdlib runc crun libseccomp2
      qemu-system-x86 hyperfine ${VMHOST_PACKAGES:-}"
kver=$(ls /boot | sed -n 's/^vmlinuz-\(.*-cloud-amd64\)$/\1/p' | sort -V | tail -1)
[ -n "$kver" ] || { echo "vmhost: no /boot/vmlinuz-*-cloud-amd64 (apt-get install linux-image-cloud-amd64)" >&2; exit 1; }
for p in $pkgs; do
  dpkg -s "$p" >/dev/null 2>&1 || { echo "vmhost: package $p is not installed (scripts/install-deps.sh)" >&2; exit 1; }
done
closure=$(apt-cache depends --recurse --installed --no-recommends --no-suggests --no-conflicts --no-breaks \
            --no-replaces --no-enhances $pkgs 2>/dev/null | grep -v '^[ <]' | sort -u)
# The key: package versions, kernel, and this script.
key=$( (echo "$kver"; for p in $closure; do dpkg-query -W -f '${Package} ${Version}\n' "$p" 2>/dev/null; done;
        cat "$0") | sha256sum | cut -c1-16)
if [ "$force" = 0 ] && [ -f "$cache/key" ] && [ "$(cat "$cache/key")" = "$key" ] && [ -f "$cache/base.ext4" ]; then
  echo "$cache"; exit 0
fi
echo "vmhost: building the base image (kernel $kver, $(echo $closure | wc -w) packages)" >&2
mkdir -p "$cache"
stage=$(mktemp -d "$cache/stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
root=$stage/root
mkdir -p "$root/usr/bin" "$root/usr/sbin" "$root/usr/lib" "$root/usr/lib64"
for d in bin sbin lib lib64; do ln -s "usr/$d" "$root/$d"; done

# Every file and symlink the packages own; /bin, /sbin, /lib, /lib64 folded into /usr (merged /usr).
for p in $closure; do dpkg -L "$p" 2>/dev/null || true; done | sort -u | while IFS= read -r f; do
  [ -f "$f" ] || [ -L "$f" ] || continue
  case "$f" in /usr/share/doc/*|/usr/share/man/*|/usr/share/info/*|/usr/share/locale/*|/usr/share/lintian/*) continue ;; esac
  case "$f" in /bin/*|/sbin/*|/lib/*|/lib64/*) f2=/usr$f ;; *) f2=$f ;; esac
  [ -e "$f2" ] || [ -L "$f2" ] || f2=$f
  echo "${f2#/}"
done | sort -u > "$stage/files"
tar -C / --no-recursion -cf - -T "$stage/files" 2>/dev/null | tar -C "$root" -xf -
ln -sf python3.11 "$root/usr/bin/python3"
ln -sf dash "$root/usr/bin/sh"
# busybox applets the init and tests use that no package above provides
for a in switch_root poweroff reboot mdev ip hostname; do
  [ -e "$root/usr/bin/$a" ] || [ -e "$root/usr/sbin/$a" ] || ln -s busybox "$root/usr/bin/$a"
done
mkdir -p "$root/proc" "$root/sys" "$root/dev" "$root/run" "$root/tmp" "$root/root" "$root/work" "$root/var/tmp" \
         "$root/etc" "$root/home/rootless" "$root/var/lib" "$root/usr/lib/modules"
chmod 1777 "$root/tmp" "$root/var/tmp"
cat > "$root/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
rootless:x:1000:1000:rootless:/home/rootless:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
P
cat > "$root/etc/group" <<'G'
root:x:0:
tty:x:5:
rootless:x:1000:
nogroup:x:65534:
G
echo "rootless:100000:65536" > "$root/etc/subuid"; cp "$root/etc/subuid" "$root/etc/subgid"
chown 1000:1000 "$root/home/rootless"
echo vmhost > "$root/etc/hostname"
printf '127.0.0.1 localhost vmhost\n::1 localhost\n' > "$root/etc/hosts"
: > "$root/etc/resolv.conf"
# Kernel modules (the guest insmods kvm, overlay, veth… by name through modules.dep).
cp -a "/lib/modules/$kver" "$root/usr/lib/modules/"

size=$(du -sm "$root" | cut -f1)
rm -f "$cache/base.ext4.tmp"
mke2fs -q -t ext4 -L vmhost -E root_owner=0:0 -d "$root" "$cache/base.ext4.tmp" "$((size + 1024))M" >&2
mv "$cache/base.ext4.tmp" "$cache/base.ext4"

# The initramfs: busybox, the virtio modules, /init.
ird=$stage/initrd
mkdir -p "$ird/bin" "$ird/dev" "$ird/proc" "$ird/sys" "$ird/newroot" "$ird/modules"
cp /bin/busybox "$ird/bin/busybox"
for a in sh mount insmod switch_root mkdir sleep echo cat poweroff; do ln -s busybox "$ird/bin/$a"; done
: > "$ird/modules/order"
mods=/lib/modules/$kver
for m in virtio_pci virtio_blk; do
  line=$(grep -E "/$m\.ko(\.xz|\.zst)?:" "$mods/modules.dep")
  for p in $(echo "$line" | tr -d ':' | awk '{ for (i = NF; i > 1; i--) print $i; print $1 }'); do
    name=$(basename "$p")
    grep -qx "$name" "$ird/modules/order" && continue
    cp "$mods/$p" "$ird/modules/$name"
    echo "$name" >> "$ird/modules/order"
  done
done
cp "$here/initramfs-init.sh" "$ird/init"
chmod 0755 "$ird/init"
(cd "$ird" && find . | cpio --quiet -o -H newc -R 0:0) | gzip -1 > "$cache/initrd.gz"
cp "/boot/vmlinuz-$kver" "$cache/vmlinuz"
echo "$kver" > "$cache/kernelrelease"
echo "$key" > "$cache/key"
echo "vmhost: base image $cache/base.ext4 (${size} MiB of files)" >&2
echo "$cache"
