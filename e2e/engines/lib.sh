# Shared by the engine scripts (sourced): result counting and an interactive tty session.
pass=0 fail=0
check() {  # check NAME EXPECTED ACTUAL
  if [ "$2" = "$3" ]; then pass=$((pass+1)); echo "ok - $name: $1"
  else fail=$((fail+1)); echo "not ok - $name: $1: expected [$2], got [$3]"; fi
}
# tty_session LABEL COMMAND...: runs COMMAND (which starts `sh` on a tty) under expect, types a
# line, checks it ran on a pty and saw the input, and that `exit 3` came back as the status.
tty_session() {
  label=$1; shift
  command -v expect >/dev/null || { fail=$((fail+1)); echo "not ok - $name: $label: expect not installed"; return; }
  out=$(expect -c "
    set timeout ${ENGINE_TTY_TIMEOUT:-20}
    spawn $*
    expect \"# \"
    send \"tty; echo \\\$((6*7))\r\"
    expect \"42\"
    send \"exit 3\r\"
    expect eof
    catch wait result
    puts \"EXIT=[lindex \$result 3]\"
  " 2>&1)
  check "$label: a pty and input" "yes" "$(echo "$out" | grep -q '/dev/pts/' && echo "$out" | grep -q '^42' && echo yes || echo no)"
  check "$label: exit code" "EXIT=3" "$(echo "$out" | grep -o 'EXIT=[0-9]*' | tail -1)"
}
summary() { echo "$pass passed, $fail failed"; [ "$fail" = 0 ]; }
# busybox_oci_archive ROOTFS WORK: WORK/oci.tar, an OCI archive of image localhost/busybox:latest
# made by podman (private storage under WORK) from ROOTFS.
busybox_oci_archive() {
  tar -C "$1" -cf "$2/busybox.tar" .
  podman --root "$2/p" --runroot "$2/pr" --storage-driver vfs import -q "$2/busybox.tar" localhost/busybox:latest >/dev/null
  podman --root "$2/p" --runroot "$2/pr" --storage-driver vfs save -q --format oci-archive -o "$2/oci.tar" localhost/busybox:latest
}
# start_containerd WORK: a private containerd without CRI (root, state, socket under WORK),
# its pid in ctrd_pid, ctr_ to talk to it; returns once it answers.
start_containerd() {
  cat > "$1/config.toml" <<CONF
version = 2
root = "$1/root"
state = "$1/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$1/containerd.sock"
CONF
  containerd --config "$1/config.toml" > "$1/containerd.log" 2>&1 &
  ctrd_pid=$!
  ctrd_sock=$1/containerd.sock
  for _ in $(seq 100); do ctr_ version >/dev/null 2>&1 && return 0; sleep 0.2; done
}
ctr_() { ctr --address "$ctrd_sock" "$@"; }
