#!/bin/sh
# PID 1 of the VM test host after switch_root (e2e/vmhost/run wrote /work/.vmhost/).
# Sets up a pure cgroup v2 host in the layout asked for, runs /work/.vmhost/cmd in /work/repo
# with its output on the second serial port, writes "vmhost-status N" on the third, powers off.
#   /work/.vmhost/env: LAYOUT=root|service|rootless, MODULES="kvm_amd veth …"
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb LANG=C.UTF-8
LAYOUT=root MODULES=""
. /work/.vmhost/env
out=/dev/ttyS1
say() { echo "vmhost: $*" > /dev/ttyS0; }
finish() {
  echo "vmhost-status $1" > /dev/ttyS2
  sync; poweroff -f; reboot -f; echo o > /proc/sysrq-trigger
}
stty -F "$out" raw -echo 2>/dev/null
stty -F /dev/ttyS2 raw -echo 2>/dev/null
# heartbeat: a console line every 30 s with the newest processes; e2e/vmhost/run tells a frozen
# VM test host (no beat) from a hung command (beats on) by it. Its pid is in
# /run/vmhost-heartbeat.pid: checks that look for stray processes leave it and its children out.
heartbeat() {
  while sleep 30; do
    p=$(ps -N --ppid 2 -o pid=,stat=,etimes=,args= --sort=-start_time 2>/dev/null)
    newest=$(echo "$p" | grep -v -e ' ps -N' -e 'guest-init.sh' -e ' sleep 30$' | head -n 4 | cut -c1-100 | tr -s ' ' | tr '\n' '|')
    echo "vmhost: alive $(cut -d' ' -f1 /proc/uptime) s; newest: $newest" > /dev/ttyS0
  done
}
start_heartbeat() {
  heartbeat < /dev/null > /dev/null 2>&1 &
  echo $! > /run/vmhost-heartbeat.pid
}
if [ "$LAYOUT" = systemd ] && [ "${1:-}" = --command ]; then
  # Layout systemd, second part: systemd (PID 1) runs this as vmhost-cmd.service.
  for m in $MODULES; do modprobe "$m" || { say "modprobe $m failed"; finish 125; }; done
  say "layout systemd: $(cat /proc/self/cgroup)"
  start_heartbeat
  cd /work/repo || finish 125
  sh /work/.vmhost/cmd > "$out" 2>&1 < /dev/null
  finish $?
elif [ "$LAYOUT" = systemd ]; then
  # Layout systemd: Debian's systemd becomes PID 1 (it mounts cgroup2, /run, /dev/pts…) and
  # boots into vmhost.target, whose one service runs the command (above) and powers off.
  u=/etc/systemd/system
  mkdir -p $u
  printf '[Unit]\nDescription=VM test host command\nRequires=vmhost-cmd.service\nAfter=vmhost-cmd.service\n' > $u/vmhost.target
  printf '[Unit]\nDescription=VM test host command (e2e/vmhost/run)\nAfter=basic.target\n[Service]\nType=oneshot\nTimeoutStartSec=infinity\nExecStart=/bin/sh /work/.vmhost/guest-init.sh --command\n' > $u/vmhost-cmd.service
  ln -sf vmhost.target $u/default.target
  # Not a first boot (it would ask for a locale and a root password on the console).
  tr -d - < /proc/sys/kernel/random/uuid > /etc/machine-id
  ln -sf /dev/null $u/systemd-firstboot.service
  exec /lib/systemd/systemd
fi
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts /dev/pts && ln -sf pts/ptmx /dev/ptmx
mount -t tmpfs -o mode=1777,nosuid,nodev shm /dev/shm
mount -t mqueue mqueue /dev/mqueue
mount -t tmpfs -o mode=0755,nosuid,nodev run /run
mount -t tmpfs -o mode=1777,nosuid,nodev tmp /tmp
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup || { say "no cgroup2"; finish 125; }
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
ln -sf /proc/self/fd /dev/fd; ln -sf /proc/self/fd/0 /dev/stdin; ln -sf /proc/self/fd/1 /dev/stdout; ln -sf /proc/self/fd/2 /dev/stderr
hostname vmhost
ip link set lo up 2>/dev/null
for m in $MODULES; do modprobe "$m" || { say "modprobe $m failed"; finish 125; }; done

# (started here: it stays in the root cgroup, out of the layout's caller cgroup)
start_heartbeat
cg=/sys/fs/cgroup
ctrls=$(cat $cg/cgroup.controllers)
enable() { for c in $ctrls; do echo "+$c" > "$1/cgroup.subtree_control" 2>/dev/null; done; }
enable $cg
case "$LAYOUT" in
  root) ;;   # the caller in the root cgroup
  service)   # systemd's layout for a service (containerd.service, a podman unit): the caller in
             # /system.slice/brig-test.service, controllers enabled down to /system.slice
    mkdir -p $cg/system.slice/brig-test.service
    enable $cg/system.slice
    echo $$ > $cg/system.slice/brig-test.service/cgroup.procs ;;
  rootless)  # systemd's delegation to a user: user@1000.service owned by the user, who runs in
             # its app.slice; runs the command as uid 1000
    u=$cg/user.slice/user-1000.slice/user@1000.service
    mkdir -p $u/app.slice/brig-test.scope
    enable $cg/user.slice; enable $cg/user.slice/user-1000.slice; enable $u; enable $u/app.slice
    chown -R 1000:1000 $u
    echo $$ > $u/app.slice/brig-test.scope/cgroup.procs
    mkdir -p /run/user/1000 && chown 1000:1000 /run/user/1000 && chmod 0700 /run/user/1000 ;;
  *) say "unknown layout $LAYOUT"; finish 125 ;;
esac
say "layout $LAYOUT: $(cat /proc/self/cgroup)"
cd /work/repo || finish 125
if [ "$LAYOUT" = rootless ]; then
  chown -R 1000:1000 /work/repo /work/out 2>/dev/null
  HOME=/home/rootless USER=rootless LOGNAME=rootless XDG_RUNTIME_DIR=/run/user/1000 \
    setpriv --reuid=1000 --regid=1000 --init-groups --inh-caps=-all -- sh /work/.vmhost/cmd > "$out" 2>&1 < /dev/null
else
  sh /work/.vmhost/cmd > "$out" 2>&1 < /dev/null
fi
finish $?
