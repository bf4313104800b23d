#!/bin/sh
# The microvm container's network end to end in the VM test host: a namespace prepared as CNI's
# bridge plugin leaves it (a veth with an IPv4 and an IPv6 address, default routes for both and
# a second IPv4 route through another gateway), a microvm container given that namespace by
# path, configured by brig-agent as the namespace is (addresses, routes, MTU, MAC), reachable
# both ways (ICMP over IPv4 and IPv6, the second route, a TCP echo with busybox nc), and after
# delete (and delete --force of a running one) no tap, qdisc or filter is left.
#
#   e2e/vmhost/microvm-net.sh [e2e/vmhost/run options]     # on the host
#
# Needs brig's guest kernel with VIRTIO_NET and IPV6 (scripts/build-guest-kernel.sh) and the
# release brig and brig-agent. Prints TAP; exits non-zero if a case failed.
set -u
if [ "${1:-}" != --in-vm ]; then
  here=$(cd "$(dirname "$0")" && pwd)
  guest=$(sh "$here/microvm-guest.sh") || exit 2
  exec sh "$here/run" --modules "kvm_amd veth tun sch_ingress act_mirred cls_u32" --copy "$guest" "$@" \
    -- sh e2e/vmhost/microvm-net.sh --in-vm
fi

G=/work/repo/.build/microvm-guest
export BRIG_VM_KERNEL=$G/vmlinux BRIG_VM_INITRD=$G/agent.initrd
ROOT=/run/brig-net
W=$(mktemp -d /tmp/net.XXXXXX)
NS=brignet HOSTIP=10.213.88.1 GUESTIP=10.213.88.2 HOST6=fd00:213:88::1 GUEST6=fd00:213:88::2
GW2=10.213.88.254 FAR=10.213.99.1   # the second route: 10.213.99.0/24 via GW2 (both the host's)
n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
fail() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "$l" | sed 's/^/#   /'; done; }
check() { if eval "$2"; then ok "$1"; else fail "$1" "$(cat "$W/out" 2>/dev/null | tail -20)"; fi; }
mvm() { timeout -k 5 300 /work/repo/.build/release/brig --root "$ROOT" --backend microvm "$@"; }

# The namespace as CNI's bridge plugin would leave it (without the bridge: the host end of
# the veth has the gateway address).
ip netns add $NS
ip link add vh0 type veth peer name eth0 netns $NS
ip addr add $HOSTIP/24 dev vh0 && ip addr add $GW2/24 dev vh0 && ip addr add $HOST6/64 dev vh0 nodad && ip link set vh0 up
ip addr add $FAR/32 dev lo
ip -n $NS link set eth0 mtu 1400
ip -n $NS addr add $GUESTIP/24 dev eth0 && ip -n $NS addr add $GUEST6/64 dev eth0 nodad
ip -n $NS link set eth0 up && ip -n $NS link set lo up
ip -n $NS route add default via $HOSTIP && ip -n $NS route add 10.213.99.0/24 via $GW2
ip -n $NS -6 route add default via $HOST6

# bundle NAME ARGS-PYTHON-LIST: a busybox bundle joining the namespace by path.
bundle() {
  d=$W/$1
  mkdir -p "$d" && cp -a /work/repo/.cache/rootfs "$d/rootfs" && (cd "$d" && /work/repo/.build/release/brig spec) || return 1
  python3 - "$d/config.json" "$2" "/run/netns/$NS" <<'PY'
import json, sys
p, args, ns = sys.argv[1], sys.argv[2], sys.argv[3]
s = json.load(open(p))
s["process"]["terminal"] = False
s["process"]["args"] = json.loads(args)
s["root"]["readonly"] = False
s["linux"]["namespaces"] = [n for n in s["linux"]["namespaces"] if n["type"] != "network"] + [{"type": "network", "path": ns}]
for k in ("bounding", "effective", "permitted"):  # busybox ping opens a raw socket
    s["process"]["capabilities"][k] = s["process"]["capabilities"].get(k, []) + ["CAP_NET_RAW"]
json.dump(s, open(p, "w"))
PY
  echo "$d"
}

left() { # nothing of ours in the namespace
  ! ip -n $NS link show tap0_brig >/dev/null 2>&1 && ! tc -n $NS qdisc show dev eth0 | grep -q ingress
}

# Guest → host: ICMP and TCP; host → guest: ICMP and a TCP echo.
busybox nc -l -p 7001 > "$W/from-guest" &
listener=$!
b=$(bundle echo '["sh", "-c", "ip addr show eth0; ip route; ip -6 route; ping -c 2 -W 20 '$HOSTIP' >/dev/null && echo PING-OK; ping6 -c 2 -W 20 '$HOST6' >/dev/null && echo PING6-OK; ping -c 2 -W 20 '$FAR' >/dev/null && echo FAR-OK; echo hello-from-guest | nc -w 20 '$HOSTIP' 7001; nc -l -p 7002 -e cat"]')
mvm create --bundle "$b" net1 > "$W/out" 2>&1; rc=$?
check "create joins the namespace by path" '[ $rc -eq 0 ]'
check "the tap and both mirror filters exist while it runs" \
  'ip -n $NS link show tap0_brig | grep -q UP && tc -n $NS filter show dev eth0 ingress | grep -qi "redirect to device tap0_brig" && tc -n $NS filter show dev tap0_brig ingress | grep -qi "redirect to device eth0"'
mvm start net1 >> "$W/out" 2>&1
# The container prints each marker as its step ends (each ping waits up to 20 s): wait for each,
# up to 120 s; once one never came, the container's output has stalled: the others are not waited for.
stalled=false
wait_out() {
  $stalled && return
  i=0; while [ $i -lt 600 ] && ! grep -q "$1" "$W/out"; do sleep 0.2; i=$((i + 1)); done
  grep -q "$1" "$W/out" || stalled=true
}
wait_out PING-OK
check "guest pings the host" 'grep -q PING-OK "$W/out"'
check "guest has the veth addresses, MAC and MTU" \
  'grep -q "inet $GUESTIP/24" "$W/out" && grep -q "inet6 $GUEST6/64" "$W/out" && grep -q "mtu 1400" "$W/out" &&
   grep -qi "ether $(ip -n $NS link show eth0 | sed -n "s/.*ether \([0-9a-f:]*\).*/\1/p")" "$W/out"'
check "guest has both IPv4 routes and the IPv6 default route" \
  'grep -q "default via $HOSTIP" "$W/out" && grep -q "10.213.99.0/24 via $GW2" "$W/out" && grep -q "default via $HOST6" "$W/out"'
wait_out PING6-OK
check "guest pings the host over IPv6" 'grep -q PING6-OK "$W/out"'
wait_out FAR-OK
check "guest reaches $FAR through the second route" 'grep -q FAR-OK "$W/out"'
# The guest's nc connects after the pings (up to 20 s); a listener still waiting then never gets it.
i=0; while [ $i -lt 150 ] && kill -0 $listener 2>/dev/null; do sleep 0.2; i=$((i + 1)); done
kill $listener 2>/dev/null; wait $listener 2>/dev/null
check "guest → host TCP" 'grep -q hello-from-guest "$W/from-guest"'
check "host pings the guest" 'busybox ping -c 2 -W 10 $GUESTIP >/dev/null'
check "host pings the guest over IPv6" 'busybox ping6 -c 2 -W 10 $GUEST6 >/dev/null'
reply=$(echo hello-to-guest | timeout 30 busybox nc -w 20 $GUESTIP 7002)
check "host → guest TCP echo" '[ "$reply" = hello-to-guest ]'
mvm kill net1 KILL >/dev/null 2>&1; sleep 1
mvm delete net1 >> "$W/out" 2>&1
check "delete leaves no tap, qdisc or filter" left

# delete --force of a running container.
b=$(bundle force '["sleep", "600"]')
mvm create --bundle "$b" net2 > "$W/out" 2>&1
check "second container created" 'ip -n $NS link show tap0_brig >/dev/null 2>&1'
mvm delete --force net2 >> "$W/out" 2>&1
check "delete --force leaves no tap, qdisc or filter" left

# No network namespace: host networking, refused naming the field.
b=$(bundle hostnet '["true"]')
python3 -c 'import json,sys; p=sys.argv[1]; s=json.load(open(p)); s["linux"]["namespaces"]=[x for x in s["linux"]["namespaces"] if x["type"]!="network"]; json.dump(s,open(p,"w"))' "$b/config.json"
mvm create --bundle "$b" net3 > "$W/out" 2>&1; rc=$?
check "host networking is refused naming linux.namespaces" '[ $rc -ne 0 ] && grep -q "linux.namespaces" "$W/out" && ! mvm state net3 >/dev/null 2>&1'

ip netns delete $NS; ip link del vh0 2>/dev/null; ip addr del $FAR/32 dev lo 2>/dev/null
echo "1..$n"
[ $failed -eq 0 ]
