#!/bin/sh
# The VM test host's initramfs /init: load the virtio modules, mount the base image (vda) as the
# root and the work disk (vdb) at /work, then switch_root: pivot_root cannot leave an initramfs,
# and the runtimes under test pivot_root, so the real root must be a disk.
/bin/mount -t proc proc /proc
/bin/mount -t sysfs sysfs /sys
/bin/mount -t devtmpfs devtmpfs /dev
while read -r m; do /bin/insmod "/modules/$m" || echo "vmhost initramfs: insmod $m failed"; done < /modules/order
i=0
while [ ! -b /dev/vda ] || [ ! -b /dev/vdb ]; do
  i=$((i + 1)); [ $i -gt 200 ] && { echo "vmhost initramfs: no /dev/vda and /dev/vdb"; /bin/poweroff -f; }
  /bin/sleep 0.05
done
/bin/mount -t ext4 /dev/vda /newroot || { echo "vmhost initramfs: mount /dev/vda failed"; /bin/poweroff -f; }
/bin/mount -t ext4 /dev/vdb /newroot/work || { echo "vmhost initramfs: mount /dev/vdb failed"; /bin/poweroff -f; }
/bin/mount --move /dev /newroot/dev
/bin/mount --move /proc /newroot/proc
/bin/mount --move /sys /newroot/sys
exec /bin/switch_root /newroot /bin/sh /work/.vmhost/guest-init.sh
