#!/bin/sh
# Inside the VM test host with systemd as PID 1, as root: runs COMMAND as the user `rootless`
# (uid 1000) the way a logged-in user runs it: the system bus and systemd-logind are started,
# lingering is enabled (`loginctl enable-linger`, so logind starts user@1000.service, the
# user's manager with its session bus), and COMMAND runs in a transient scope of that manager
# (`systemd-run --user --scope`), i.e. inside the subtree systemd delegates to the user
# (user@1000.service/app.slice/run-….scope), with XDG_RUNTIME_DIR and DBUS_SESSION_BUS_ADDRESS
# set as a login session has them.
#   sh e2e/vmhost/systemd-user.sh COMMAND…
# Exits with COMMAND's status (125 when the user's manager cannot be brought up).
set -u
uid=1000 user=rootless
rt=/run/user/$uid
say() { echo "# systemd-user: $*" >&2; }
# What the image's package files lack (they are copied, not installed): the system bus's user
# and the PAM stacks user@.service includes (pam-auth-update writes them on a real install).
grep -q '^messagebus:' /etc/passwd || echo 'messagebus:x:100:102::/nonexistent:/usr/sbin/nologin' >> /etc/passwd
grep -q '^messagebus:' /etc/group || echo 'messagebus:x:102:' >> /etc/group
for f in auth:auth account:account password:password session:session session-noninteractive:session; do
  [ -e "/etc/pam.d/common-${f%%:*}" ] || printf '%s required pam_permit.so\n' "${f#*:}" > "/etc/pam.d/common-${f%%:*}"
done
[ -e /etc/pam.d/systemd-user ] || cp /usr/lib/pam.d/systemd-user /etc/pam.d/systemd-user
if ! loginctl show-user "$user" -P State 2>/dev/null | grep -q .; then
  systemctl start dbus.socket dbus.service systemd-logind.service || { say "cannot start dbus/logind"; exit 125; }
  loginctl enable-linger "$user" || { say "loginctl enable-linger $user failed"; exit 125; }
fi
for _ in $(seq 1 300); do
  [ "$(systemctl is-active "user@$uid.service" 2>/dev/null)" = active ] && [ -S "$rt/bus" ] && break
  sleep 0.2
done
[ "$(systemctl is-active "user@$uid.service")" = active ] || {
  say "user@$uid.service is $(systemctl is-active "user@$uid.service")"
  journalctl -b --no-pager -u "user@$uid.service" -u "user-runtime-dir@$uid.service" -u systemd-logind 2>&1 | tail -20 >&2
  exit 125
}
export HOME=/home/$user USER=$user LOGNAME=$user XDG_RUNTIME_DIR=$rt DBUS_SESSION_BUS_ADDRESS=unix:path=$rt/bus
exec setpriv --reuid=$uid --regid=$uid --init-groups --inh-caps=-all -- \
  systemd-run --user --scope --quiet --collect -- "$@"
