#!/bin/sh
# Side-by-side lifecycle benchmark: brig vs runc vs crun, in one run, same bundle (/bin/true in a
# busybox-static rootfs), reporting medians and ratios to crun (the goal: brig ≤ 1.0× crun).
#   `run`                  : <rt> run (create + start + wait + delete)
#   `create/start/delete`  : the three calls an engine makes per container
#   `exec`                 : <rt> exec of /bin/true into a running container
#   throughput             : 16 concurrent `run`s of /bin/true (containers per second, failures)
#   CPU time               : task-clock of a `run`'s whole process tree (perf stat): stable on a
#                            machine other work shares, where wall times move by ±50%
#   peak RSS               : max RSS of the runtime's process tree during `run` (GNU time, when
#                            installed)
# crun 1.8 refuses this host's hybrid cgroup layout, so every runtime is measured inside one
# private mount namespace with /sys/fs/cgroup/unified unmounted (like for like); brig is also
# measured on the unmodified host. On a pure cgroup v2 host (the VM test host) nothing is hidden.
#   RUNS=N (default 30), BRIG=path (default: the release build, built here), THROUGHPUT=N
#   containers per runtime for the concurrency test (default 64).
set -eu
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
runs=${RUNS:-30}
total=${THROUGHPUT:-64}
if [ -z "${BRIG:-}" ]; then
    ./scripts/install-deps.sh
    swift build -c release --product brig >/dev/null
    BRIG=$(pwd)/.build/release/brig
fi
brig=$BRIG
work=$(mktemp -d /tmp/brig-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT
# The conformance suite's cached rootfs when there is one (the VM test host has no busybox-static).
if [ -f .cache/conformance/rootfs.stamp ]; then mkdir -p "$work/bundle" && cp -a .cache/conformance/rootfs "$work/bundle/rootfs"
else ./scripts/make-rootfs.sh "$work/bundle/rootfs"; fi
"$brig" spec --bundle "$work/bundle"
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
c["ociVersion"] = "1.0.2"  # crun 1.8 rejects 1.2.0
json.dump(c, open(p, "w"), indent=1)
PY
# A second bundle on the same rootfs whose process stays up, for `exec`.
mkdir -p "$work/sleeper"
python3 - "$work/bundle/config.json" "$work/sleeper/config.json" "$work/bundle/rootfs" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["args"] = ["/bin/sleep", "1000"]
c["root"]["path"] = sys.argv[3]
json.dump(c, open(sys.argv[2], "w"), indent=1)
PY
b=$work/bundle
runtimes="brig runc crun"
bin() { if [ "$1" = brig ]; then echo "$brig"; else echo "$1"; fi; }
hidden=true
[ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ] && hidden=false
cat > "$work/inner.sh" <<SH
set -eu
$hidden && { umount /sys/fs/cgroup/unified 2>/dev/null || true; }
bin() { if [ "\$1" = brig ]; then echo "$brig"; else echo "\$1"; fi; }
run_args="" csd_args="" exec_args=""
for r in $runtimes; do
  x=\$(bin \$r)
  run_args="\$run_args -n \$r '\$x --root $work/s-\$r run --bundle $b bench'"
  csd_args="\$csd_args -n \$r '\$x --root $work/s-\$r create --bundle $b x && \$x --root $work/s-\$r start x && \$x --root $work/s-\$r delete --force x'"
  exec_args="\$exec_args -n \$r '\$x --root $work/s-\$r exec sleeper-\$r /bin/true'"
  \$x --root $work/s-\$r run -d --bundle $work/sleeper sleeper-\$r
done
eval hyperfine -N --runs $runs --warmup 3 --export-json $work/run.json \$run_args >/dev/null
eval hyperfine --runs $runs --warmup 3 --export-json $work/csd.json \$csd_args >/dev/null
eval hyperfine -N --runs $runs --warmup 3 --export-json $work/exec.json \$exec_args >/dev/null
for r in $runtimes; do \$(bin \$r) --root $work/s-\$r delete --force sleeper-\$r; done
# Peak RSS of the whole process tree of one run (GNU time reports the largest waited-for process).
if [ -x /usr/bin/time ]; then
  for r in $runtimes; do
    for i in 1 2 3 4 5; do
      /usr/bin/time -f %M -o $work/rss-\$r-\$i \$(bin \$r) --root $work/s-\$r run --bundle $b rss\$i
    done
  done
fi
# CPU time of one run (task-clock of the whole process tree, perf stat): unlike wall time it
# hardly moves when other work shares the machine.
# Interleaved (one run of each runtime per round), so that load changes hit all of them alike.
if command -v perf >/dev/null; then
  for i in \$(seq $runs); do
    for r in $runtimes; do
      perf stat -x, -e task-clock -o $work/cpu.txt \$(bin \$r) --root $work/s-\$r run --bundle $b cpu\$i >/dev/null
      grep task-clock $work/cpu.txt | cut -d, -f1 >> $work/cpu-\$r
    done
  done
fi
# Throughput: $total containers, 16 at a time; every one must succeed.
for r in $runtimes; do
  x=\$(bin \$r)
  start=\$(date +%s.%N)
  seq $total | xargs -P 16 -I{} sh -c "\$x --root $work/s-\$r run --bundle $b t{} >/dev/null 2>&1 || echo fail" > $work/tp-\$r.fail
  end=\$(date +%s.%N)
  echo "\$start \$end \$(wc -l < $work/tp-\$r.fail)" > $work/tp-\$r
done
SH
unshare -m sh "$work/inner.sh"
if $hidden; then
    hyperfine -N --runs "$runs" --warmup 3 --export-json "$work/host.json" \
      -n "brig (hybrid host)" "$brig --root $work/s-host run --bundle $b bench" >/dev/null
fi
hyperfine -N --runs "$runs" --warmup 3 --export-json "$work/start.json" \
  -n "brig" "$brig --version" -n "runc" "runc --version" -n "crun" "crun --version" >/dev/null
python3 - "$work" "$runs" "$total" "$runtimes" <<'PY'
import json, os, sys, statistics, platform, subprocess
work, runs, total, names = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].split()
def load(name):
    return {r["command"]: statistics.median(r["times"]) * 1000 for r in json.load(open(f"{work}/{name}.json"))["results"]}
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"# brig lifecycle benchmark ({runs} runs each, medians; ratio = runtime / crun, goal brig <= 1.00)")
print(f"host: {platform.node()} {platform.release()}, {cpu}, {os.cpu_count()} cores")
rows = [("run of /bin/true", "run"), ("create + start + delete", "csd"), ("exec of /bin/true", "exec"),
        ("process start (--version)", "start")]
print(f"\n{'':28}" + "".join(f"{n:>18}" for n in names))
for title, name in rows:
    m = load(name)
    print(f"{title:28}" + "".join(f"{m[n]:9.2f} ms x{m[n] / m['crun']:5.2f}" for n in names))
if all(os.path.exists(f"{work}/rss-{n}-1") for n in names):
    rss = {n: statistics.median(int(open(f"{work}/rss-{n}-{i}").read().split()[-1]) for i in range(1, 6)) / 1024 for n in names}
    print(f"{'peak RSS of a run (MiB)':28}" + "".join(f"{rss[n]:9.1f} MiB{rss[n] - rss['crun']:+5.1f}" for n in names))
if all(os.path.exists(f"{work}/cpu-{n}") for n in names):
    cput = {n: statistics.median(float(x) for x in open(f"{work}/cpu-{n}").read().split()) for n in names}
    print(f"{'CPU time of a run (ms)':28}" + "".join(f"{cput[n]:9.2f} ms x{cput[n] / cput['crun']:5.2f}" for n in names))
tp = {}
for n in names:
    a, b, fails = open(f"{work}/tp-{n}").read().split()
    tp[n] = (total / (float(b) - float(a)), int(fails))
print(f"{'16 concurrent runs (ctr/s)':28}" + "".join(f"{tp[n][0]:9.1f}/s  x{tp[n][0] / tp['crun'][0]:5.2f}" for n in names))
print(f"{'  failures':28}" + "".join(f"{tp[n][1]:>18}" for n in names))
if os.path.exists(f"{work}/host.json"):
    for k, v in load("host").items():
        print(f"\n{k}: run of /bin/true {v:.2f} ms")
PY
