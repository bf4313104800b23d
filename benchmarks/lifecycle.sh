#!/bin/sh
# Side-by-side lifecycle benchmark: brig vs runc vs crun, in one run, same bundle (/bin/true in a
# busybox-static rootfs), reporting medians and ratios.
#   `run`                  : <rt> run (create + start + wait + delete)
#   `create/start/delete`  : the three calls an engine makes per container
# crun 1.8 refuses this host's hybrid cgroup layout, so every runtime is measured inside one
# private mount namespace with /sys/fs/cgroup/unified unmounted (like for like); brig is also
# measured on the unmodified host.
set -eu
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
runs=${RUNS:-30}
./scripts/install-deps.sh
swift build -c release --product brig >/dev/null
brig=$(pwd)/.build/release/brig
work=$(mktemp -d /tmp/brig-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT
./scripts/make-rootfs.sh "$work/bundle/rootfs"
"$brig" spec --bundle "$work/bundle"
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
c["ociVersion"] = "1.0.2"  # crun 1.8 rejects 1.2.0
json.dump(c, open(p, "w"), indent=1)
PY
b=$work/bundle
cat > "$work/inner.sh" <<SH
set -eu
umount /sys/fs/cgroup/unified 2>/dev/null || true
hyperfine -N --runs $runs --warmup 3 --export-json $work/run.json \
  -n brig "$brig --root $work/s-brig run --bundle $b bench" \
  -n runc "runc --root $work/s-runc run --bundle $b bench" \
  -n crun "crun --root $work/s-crun run --bundle $b bench" >/dev/null
hyperfine --runs $runs --warmup 3 --export-json $work/csd.json \
  -n brig "$brig --root $work/s-brig create --bundle $b x && $brig --root $work/s-brig start x && $brig --root $work/s-brig delete --force x" \
  -n runc "runc --root $work/s-runc create --bundle $b x && runc --root $work/s-runc start x && runc --root $work/s-runc delete --force x" \
  -n crun "crun --root $work/s-crun create --bundle $b x && crun --root $work/s-crun start x && crun --root $work/s-crun delete --force x" >/dev/null
SH
unshare -m sh "$work/inner.sh"
hyperfine -N --runs $runs --warmup 3 --export-json $work/host.json \
  -n "brig (hybrid host)" "$brig --root $work/s-host run --bundle $b bench" >/dev/null
hyperfine -N --runs $runs --warmup 3 --export-json $work/start.json \
  -n "brig --version" "$brig --version" -n "runc --version" "runc --version" -n "crun --version" "crun --version" >/dev/null
python3 - "$work" "$runs" <<'PY'
import json, sys, statistics, platform, subprocess
work, runs = sys.argv[1], sys.argv[2]
def load(name):
    return {r["command"]: statistics.median(r["times"]) * 1000 for r in json.load(open(f"{work}/{name}.json"))["results"]}
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"# brig lifecycle benchmark ({runs} runs each, medians)")
print(f"host: {platform.node()} {platform.release()}, {cpu}, {subprocess.run(['nproc'],capture_output=True,text=True).stdout.strip()} cores")
for title, name in [("run of /bin/true", "run"), ("create + start + delete", "csd"), ("process start (--version)", "start")]:
    m = load(name)
    base = next(v for k, v in m.items() if k.startswith("brig"))
    print(f"\n{title}:")
    for k, v in m.items():
        print(f"  {k:<22} {v:8.2f} ms   x{v / base:5.2f} of brig")
m = load("host")
for k, v in m.items():
    print(f"\n{k}: run of /bin/true {v:.2f} ms")
PY
