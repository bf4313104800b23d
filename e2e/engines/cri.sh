#!/bin/sh
# Drives containerd 1.6's CRI plugin (what kubelet talks to) with a given OCI runtime behind the
# runc shim v2 (BinaryName): e2e/engines/cri.sh [RUNTIME_PATH]
# A private containerd (socket, root, state under a temp dir), busybox and pause-like images
# imported from the local rootfs (no registry), host-network pods (no CNI), and a small Python
# CRI client (cri/cri_client.py) that walks a pod through RunPodSandbox ... RemovePodSandbox.
# Prints "ok/not ok" lines and "N passed, M failed".
set -u
cd "$(dirname "$0")/../.."
runtime=${1:-$(pwd)/.build/debug/brig}
name="cri $(basename "$runtime")"
work=$(mktemp -d /tmp/brig-cri-XXXXXX)
cleanup() {
  [ -n "${ctrd_pid:-}" ] && kill "$ctrd_pid" 2>/dev/null && wait "$ctrd_pid" 2>/dev/null
  # After a failed run, shims (they outlive containerd) and containers may be left: end ours.
  for d in /proc/[0-9]*; do
    { tr '\0' ' ' < "$d/cmdline"; } 2>/dev/null | grep -q "containerd-shim.* -address $work/containerd.sock" &&
      kill -KILL "${d#/proc/}" 2>/dev/null  # a shim ignores TERM
  done
  for c in "$work"/runtime-root/k8s.io/*; do
    [ -e "$c" ] && "$runtime" --root "$work/runtime-root/k8s.io" delete --force "$(basename "$c")" 2>/dev/null
  done
  # containerd leaves its snapshot and shm mounts behind when stopped; unmount before removing.
  grep -o " $work/[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount -l "$m"; done
  rm -rf "$work" 2>/dev/null
}
trap cleanup EXIT
for tool in containerd ctr podman protoc; do
  command -v $tool >/dev/null || { echo "not ok - $name: $tool not installed"; exit 1; }
done
/usr/bin/python3 -c 'import grpc, google.protobuf' 2>/dev/null || {
  echo "not ok - $name: python3-grpcio/python3-protobuf not installed"; exit 1; }
./scripts/make-rootfs.sh "$work/rootfs"
tar -C "$work/rootfs" -cf "$work/busybox.tar" .
podman_() { podman --root "$work/p" --runroot "$work/pr" --storage-driver vfs "$@"; }
podman_ import -q "$work/busybox.tar" localhost/busybox:latest >/dev/null
# The pod's sandbox ("pause") container: sleeps until TERM.
podman_ import -q --change 'ENTRYPOINT ["/bin/sh", "-c", "trap \"exit 0\" TERM; while true; do sleep 1000 & wait $!; done"]' \
  "$work/busybox.tar" localhost/pause:latest >/dev/null
podman_ save -q --format oci-archive -o "$work/busybox-oci.tar" localhost/busybox:latest
podman_ save -q --format oci-archive -o "$work/pause-oci.tar" localhost/pause:latest
cat > "$work/config.toml" <<CONF
version = 2
root = "$work/root"
state = "$work/state"
[grpc]
  address = "$work/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/pause:latest"
  # Root here lacks CAP_SYS_RESOURCE: keep oom_score_adj at or above containerd's own.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$runtime"
        Root = "$work/runtime-root"
  # Pods use the host network, so CNI is never called; keep its config private anyway.
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$work/cni/bin"
    conf_dir = "$work/cni/conf.d"
CONF
mkdir -p "$work/cni/bin" "$work/cni/conf.d" "$work/logs"
containerd --config "$work/config.toml" > "$work/containerd.log" 2>&1 &
ctrd_pid=$!
ctr_() { ctr --address "$work/containerd.sock" --namespace k8s.io "$@"; }
for i in $(seq 100); do ctr_ version >/dev/null 2>&1 && break; sleep 0.1; done
for img in busybox pause; do
  ctr_ image import --base-name localhost/$img "$work/$img-oci.tar" >"$work/import.log" 2>&1 ||
    { echo "not ok - $name: import $img image: $(cat "$work/import.log")"; exit 1; }
done
/usr/bin/python3 e2e/engines/cri/cri_client.py "$work/containerd.sock" "$work/logs" \
  localhost/busybox:latest "$name"
rc=$?
[ $rc = 0 ] || { echo "# containerd log (last 30 lines):"; tail -30 "$work/containerd.log" | sed 's/^/# /'; }
exit $rc
