# Shell helpers for the crash and churn scripts (e2e/crash-points.sh, benchmarks/churn.sh,
# benchmarks/crash-leftovers.sh). Source it; REPO must be the repository root.

# sleep_bundle DIR RUNTIME: a busybox bundle in DIR running `sleep 1000` without a terminal,
# from RUNTIME's own `spec` (runc's where RUNTIME has none).
sleep_bundle() {
    mkdir -p "$1"
    cp -a "$REPO/.cache/rootfs" "$1/rootfs"
    (cd "$1" && { "$2" spec >/dev/null 2>&1 || runc spec; })
    python3 - "$1/config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["sleep", "1000"]
json.dump(c, open(p, "w"), indent=1)
PY
}

# live_procs ID: how many live (not zombie) processes are in a cgroup named ID, on any hierarchy.
live_procs() {
    _n=0
    for _f in $(grep -ls "/$1\$" /proc/[0-9]*/cgroup 2>/dev/null); do
        _s=$(sed 's/.*) //' "${_f%/cgroup}/stat" 2>/dev/null | cut -d' ' -f1)
        [ -n "$_s" ] && [ "$_s" != Z ] && _n=$((_n + 1))
    done
    echo "$_n"
}
