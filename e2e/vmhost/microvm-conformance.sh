#!/bin/sh
# The conformance suite (conformance/run) against brig's microvm backend over the real KVM
# transport, inside the VM test host (nested SVM under QEMU TCG: every VM boot takes seconds, so
# every timeout is scaled by --time-scale, and a case gets 60 s before scaling: several boots).
#
#   e2e/vmhost/microvm-conformance.sh [--out DIR] [--timeout S] [--baseline] [CASE…]   # on the host
#
# Prints the suite's TAP (one line per case) and its summary. Exit status 1 if any case fails;
# with --baseline (CI), only if a case that conformance/RESULTS.md's column "brig microvm (KVM)"
# records as passing fails now, twice (a regressed case runs once more: under nested emulation a
# single failure is printed as FLAKY, with its first reason), or a note on that column is stale.
# With --out DIR the per-case results land in DIR/microvm-kvm.json ({case: [status, reason]})
# and every brig call the suite made in DIR/calls.log. That column is a full run's microvm-kvm.json copied to
# .cache/conformance-results/v2/brig-microvm-kvm.json (its --results spec: RESULTS.md's header).
# A watchdog prints what every brig process, monitor and guest is doing (process tree, kernel
# stacks, each container's console tail and timing) when a brig call has run for $SLOW_CALL
# seconds (default 60) or no case has finished for $STALL_AFTER seconds (default 420).
set -u
if [ "${1:-}" != --in-vm ]; then
  here=$(cd "$(dirname "$0")" && pwd)
  out="" timeout="" baseline=""
  while :; do
    case "${1:-}" in
      --out) out=$2; shift 2 ;;
      --timeout) timeout=$2; shift 2 ;;
      --baseline) baseline=--baseline; shift ;;
      *) break ;;
    esac
  done
  guest=$(sh "$here/microvm-guest.sh") || exit 2
  exec sh "$here/run" --modules kvm_amd --copy "$guest" ${timeout:+--timeout "$timeout"} ${out:+--out "$out"} \
    -- sh e2e/vmhost/microvm-conformance.sh --in-vm $baseline "$@"
fi
shift
baseline=""
[ "${1:-}" = --baseline ] && { baseline="brig microvm (KVM)"; shift; }
G=/work/repo/.build/microvm-guest
export BRIG_VM_KERNEL=$G/vmlinux BRIG_VM_INITRD=$G/agent.initrd
ROOT=/run/brig-conf
STALL_AFTER=${STALL_AFTER:-420} SLOW_CALL=${SLOW_CALL:-60}
mkdir -p /work/out && : > /work/out/calls.log
# The runtime the suite calls: brig, each call logged with its start time and pid (the suite's
# timeouts kill brig itself). Before a `delete --force` (every case's cleanup) the container's
# guest console, agent log, why the VM (vm-stopped) or its monitor (monitor.exit) stopped and its timing are kept in /work/out/kept/ (the
# tails), so a case that failed can be diagnosed afterwards.
cat > /tmp/brig-logged <<'EOF'
#!/bin/sh
echo "$(date +%s) $$ $*" >> /work/out/calls.log
case " $* " in *" delete --force "*)
  for id in "$@"; do :; done
  mkdir -p /work/out/kept
  for f in console.log agent.log vm-stopped monitor.exit timing; do
    [ -f "/run/brig-conf/$id/$f" ] && tail -c 20000 "/run/brig-conf/$id/$f" > "/work/out/kept/$id.$f"
  done
  # And whether its monitor still ran then (the status brig derives from it; its pid's state).
  pid=$(/work/repo/.build/release/brig --root /run/brig-conf state "$id" 2>&1 | tee "/work/out/kept/$id.state" | sed -n 's/.*"pid" *: *\([0-9]*\).*/\1/p')
  [ -n "$pid" ] && [ "$pid" != 0 ] &&
    echo "pid $pid: state $(cut -d' ' -f3 /proc/$pid/stat 2>/dev/null || echo gone): $(tr '\0' ' ' < /proc/$pid/cmdline 2>/dev/null)" >> "/work/out/kept/$id.state" ;;
esac
exec /work/repo/.build/release/brig "$@"
EOF
chmod +x /tmp/brig-logged

diagnose() {
  echo "# ---- $1: what is running ----"
  ps -eo pid,ppid,stat,etimes,wchan:24,args | grep -v -e ' \[' -e 'ps -eo' | sed 's/^/#   /'
  for p in $(pgrep -f 'brig|vm-monitor'); do
    echo "# pid $p: $(tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null | cut -c1-160)"
    for t in /proc/$p/task/*; do
      echo "#   task ${t##*/} $(cat $t/comm 2>/dev/null) $(cut -d' ' -f3 $t/stat 2>/dev/null) wchan=$(cat $t/wchan 2>/dev/null)"
      sed 's/^/#     /' $t/stack 2>/dev/null | head -8
    done
    ls -l /proc/$p/fd 2>/dev/null | sed -n 's/.* \([0-9][0-9]*\) -> /#   fd \1 -> /p' | head -20
  done
  for d in "$ROOT"/*/; do
    [ -d "$d" ] || continue
    echo "# state dir $d: $(ls -A "$d" | tr '\n' ' ')"
    [ -f "$d/timing" ] && echo "#   timing: $(tr '\n' ' ' < "$d/timing")"
    [ -f "$d/console.log" ] && tail -c 2500 "$d/console.log" | tr -d '\r' | sed 's/^/#   console| /'
  done
  for f in "$ROOT"/*/agent.log; do [ -f "$f" ] && tail -n 20 "$f" | sed "s|^|#   $f: |"; done
  echo "# last brig calls:"; tail -n 12 /work/out/calls.log | sed 's/^/#   /'
  echo "# ---- end of diagnosis ----"
}

start=$(date +%s)
python3 -u conformance/run --runtime /tmp/brig-logged --root "$ROOT" --backend microvm --time-scale 6 --timeout 60 \
  --json /work/out/microvm-kvm.json ${baseline:+--baseline "$baseline" --retry-regressions} "$@" > /tmp/tap 2>&1 &
suite=$!
tail -n +1 -f /tmp/tap --pid=$suite &
tailer=$!
last=$(date +%s) seen=0 told=0 slow=""
while kill -0 $suite 2>/dev/null; do
  sleep 5
  now=$(date +%s) lines=$(wc -l < /tmp/tap)
  # Calls started more than SLOW_CALL s ago that still run, each diagnosed once. (No awk here.)
  while read -r t c args; do
    case "$t$c" in *[!0-9]*|"") continue ;; esac   # (an argument's continuation line)
    [ $((now - t)) -ge "$SLOW_CALL" ] && grep -q brig "/proc/$c/cmdline" 2>/dev/null || continue
    case " $slow " in *" $c "*) continue ;; esac
    slow="$slow $c"
    diagnose "brig call $c has run for $((now - t)) s: $(echo "$args" | cut -c1-150)"
  done < /work/out/calls.log
  if [ "$lines" != "$seen" ]; then seen=$lines last=$now told=0; continue; fi
  if [ $((now - last)) -ge "$STALL_AFTER" ] && [ $told = 0 ]; then diagnose "no case finished for ${STALL_AFTER} s"; told=1; fi
done
wait $suite; rc=$?
sleep 1; kill $tailer 2>/dev/null
echo "# conformance under microvm+KVM: $(( $(date +%s) - start )) s in the VM test host"
# A VMM the VM test host's kernel killed (OOM, a fault) would read as a container that stopped.
dmesg | grep -i -E 'out of memory|oom-kill|killed process|segfault|traps:|general protection' | sed 's/^/# dmesg: /' | tail -n 20
# Each case that regressed, or failed once and passed its retry (FLAKY): what its containers' VMs
# left in kept/ (the work disk goes with the VM in CI: the log is where the next one is read).
for name in $(sed -n -e 's/^# FLAKY: \([a-z0-9-]*\) failed.*/\1/p' -e 's/^# REGRESSIONS ([^)]*): //p' /tmp/tap | tr ',' ' '); do
  for f in /work/out/kept/*-"$name".*; do
    [ -f "$f" ] || continue
    echo "# ---- kept for $name: ${f##*/} (tail) ----"
    tail -n 25 "$f" | tr -d '\r' | cut -c1-300 | sed 's/^/#   /'
  done
done
exit $rc
