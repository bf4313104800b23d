#!/bin/sh
# Container network benchmark, side by side in one run in the VM test host: TCP throughput
# (host → container, a 16 MiB stream into `nc > /dev/null`; container → host, `head -c 16M
# /dev/zero | nc` started with `brig exec`, timed from its first byte) and round-trip latency (1 byte to
# `nc -e cat` and back, TCP_NODELAY) between the host and
#   - a microvm container (virtio-net on the tap mirrored to the namespace's veth), without
#     the tap's checksum/TSO offloads (the default) and with them (BRIG_VM_NET_OFFLOAD=1), and
#   - a namespaces container (the same busybox bundle, its network namespace joined by path),
# each in its own network namespace prepared the same way (a veth pair with a /24, as CNI's
# bridge plugin leaves it without the bridge). The client is python3 on the VM host.
#
#   benchmarks/net.sh [RUNS]          # on the host: builds nothing, runs in e2e/vmhost/run
#
# Everything there is emulated (QEMU TCG; the microvm under nested SVM inside it): the absolute
# figures mean nothing, only the ratios microvm / namespaces do. Needs the release brig and
# brig-agent and brig's guest kernel (as e2e/vmhost/microvm-net.sh).
set -u
if [ "${1:-}" != --in-vm ]; then
  here=$(cd "$(dirname "$0")" && pwd)
  guest=$(sh "$here/../e2e/vmhost/microvm-guest.sh") || exit 2
  exec sh "$here/../e2e/vmhost/run" --modules "kvm_amd veth tun sch_ingress act_mirred cls_u32" --copy "$guest" --timeout 1800 \
    -- sh benchmarks/net.sh --in-vm "${1:-3}"
fi
runs=${2:-3}
G=/work/repo/.build/microvm-guest
export BRIG_VM_KERNEL=$G/vmlinux BRIG_VM_INITRD=$G/agent.initrd
brig=/work/repo/.build/release/brig
ROOT=/run/brig-netbench W=$(mktemp -d /tmp/netbench.XXXXXX)

# ns NAME HOSTIF PREFIX: a namespace with eth0 = PREFIX.2/24, the host's end PREFIX.1.
ns() {
  ip netns add "$1" && ip link add "$2" type veth peer name eth0 netns "$1" &&
  ip addr add "$3.1/24" dev "$2" && ip link set "$2" up &&
  ip -n "$1" addr add "$3.2/24" dev eth0 && ip -n "$1" link set eth0 up && ip -n "$1" link set lo up &&
  ip -n "$1" route add default via "$3.1"
}
ns nbvm nbh0 10.214.1 && ns nbns nbh1 10.214.2 && ns nbvp nbh2 10.214.3 ||
  { echo "net.sh: preparing the namespaces failed" >&2; exit 1; }

bundle() { # NAME NETNS
  d=$W/$1
  mkdir -p "$d" && cp -a /work/repo/.cache/rootfs "$d/rootfs" && (cd "$d" && $brig spec) || return 1
  python3 - "$d/config.json" "/run/netns/$2" <<'PY'
import json, sys
p, ns = sys.argv[1], sys.argv[2]
s = json.load(open(p))
s["process"]["terminal"] = False
s["process"]["args"] = ["sh", "-c", "while :; do nc -l -p 5001 > /dev/null; done & while :; do nc -l -p 5002 -e cat; done"]
s["root"]["readonly"] = False
s["linux"]["namespaces"] = [n for n in s["linux"]["namespaces"] if n["type"] != "network"] + [{"type": "network", "path": ns}]
json.dump(s, open(p, "w"))
PY
  echo "$d"
}

cat > "$W/measure.py" <<'PY'
import socket, statistics, subprocess, sys, time
runs, brig, root = int(sys.argv[1]), sys.argv[2], sys.argv[3]
size, rtts = 16 << 20, 300

def connect(ip, port, deadline=240):
    end = time.time() + deadline
    while True:
        try:
            s = socket.create_connection((ip, port), timeout=60)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return s
        except OSError:
            if time.time() > end: raise
            time.sleep(0.2)

def throughput(ip):
    s = connect(ip, 5001)
    chunk, left, t = b"\0" * 65536, size, time.perf_counter()
    while left > 0:
        left -= s.send(chunk[:min(left, len(chunk))])
    s.shutdown(socket.SHUT_WR)
    s.recv(1)                         # the sink closes after EOF: every byte went through
    dt = time.perf_counter() - t
    s.close()
    return size / dt / 1e6

def latency(ip):
    s = connect(ip, 5002)
    s.sendall(b"x"); s.recv(1)        # warm-up (ARP, the echo process)
    out = []
    for _ in range(rtts):
        t = time.perf_counter(); s.sendall(b"x")
        if s.recv(1) != b"x": raise SystemExit("echo broke")
        out.append((time.perf_counter() - t) * 1e6)
    s.close()
    return statistics.median(out)

def upload(ip, ctr):
    host = ip.rsplit(".", 1)[0] + ".1"
    l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind((host, 6001)); l.listen(1); l.settimeout(300)
    p = subprocess.Popen([brig, "--root", root, "exec", ctr, "sh", "-c", f"head -c {size} /dev/zero | nc {host} 6001"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    c, _ = l.accept(); l.close()
    got = len(c.recv(65536)); t = time.perf_counter()
    while True:
        b = c.recv(1 << 20)
        if not b: break
        got += len(b)
    dt = time.perf_counter() - t
    c.close(); p.wait()
    if got != size: raise SystemExit(f"upload from {ctr}: {got} of {size} bytes")
    return size / dt / 1e6

import json
targets = [t.split(":") for t in sys.argv[5:]]   # name:ip:container
res = {}
for name, ip, c in targets:
    latency(ip)                       # every side up before timing
for r in range(runs):                 # interleaved, so load changes hit all alike
    for name, ip, c in targets:
        v = res.setdefault(name, {"tp": [], "rtt": [], "up": []})
        v["tp"].append(throughput(ip)); v["rtt"].append(latency(ip)); v["up"].append(upload(ip, c))
json.dump(res, open(sys.argv[4], "w"))
PY

$brig --root $ROOT create --bundle "$(bundle nsc nbns)" nbns > "$W/ns.log" 2>&1 && $brig --root $ROOT start nbns ||
  { echo "net.sh: namespaces container failed:"; cat "$W/ns.log"; exit 1; }
# One VM at a time (two nested VMs at once under TCG are a stress test of their own), each
# measured interleaved with the namespaces container.
rc=0
for v in "offload nbvm 10.214.1.2 1" "plain nbvp 10.214.3.2 0"; do
  set -- $v
  BRIG_VM_NET_OFFLOAD=$4 $brig --root $ROOT --backend microvm create --bundle "$(bundle $1 $2)" $2 > "$W/$1.log" 2>&1 &&
    $brig --root $ROOT --backend microvm start $2 >> "$W/$1.log" 2>&1 &&
    python3 "$W/measure.py" "$runs" "$brig" "$ROOT" "$W/$1.json" "$1:$3:$2" "namespaces:10.214.2.2:nbns" ||
    { echo "net.sh: microvm ($1) failed:"; cat "$W/$1.log"; rc=1; }
  $brig --root $ROOT delete --force $2 >/dev/null 2>&1
done
[ $rc = 0 ] && { python3 - "$runs" "$W/offload.json" "$W/plain.json" <<'PY'
import json, statistics, sys
runs = sys.argv[1]
o, p = json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))  # each ratio: against the namespaces run of its phase
med = lambda d, k: statistics.median(d[k])
print(f"# container network, host <-> container over a veth ({runs} interleaved runs per microvm variant, medians;")
print("# nested emulation (QEMU TCG, the microvm under nested SVM): only the ratios mean anything)")
print(f"{'':26} {'namespaces':>12} {'microvm':>12} {'ratio':>7} {'w/ offloads':>12} {'ratio':>7}")
for k, label, unit in (("tp", "TCP throughput host->ctr", "MB/s"), ("up", "TCP throughput ctr->host", "MB/s"), ("rtt", "TCP round trip (1 byte)", "us")):
    n1, n2, a, b = med(p["namespaces"], k), med(o["namespaces"], k), med(p["plain"], k), med(o["offload"], k)
    f = "%9.2f" if unit == "MB/s" else "%9.0f"
    print(f"{label:26} {f % n1} {unit:>4} {f % a} {unit:>4} {a / n1:>7.3f} {f % b} {unit:>4} {b / n2:>7.3f}")
for name, d in (("offload phase", o), ("plain phase", p)):
    print(f"# raw {name}: " + "; ".join(f"{k} in {['%.2f' % x for x in v['tp']]} out {['%.2f' % x for x in v['up']]} rtt {['%.0f' % x for x in v['rtt']]}" for k, v in d.items()))
PY
rc=$?; }
for c in nbvm nbvp nbns; do $brig --root $ROOT delete --force $c >/dev/null 2>&1; ip netns delete $c; done
rm -rf "$W"
exit $rc
