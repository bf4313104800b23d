# Sourced by the VM test host's checks that look for stray or new processes (cgroup-v2-errors.sh,
# microvm-e2e.sh). guest-init.sh's heartbeat (its pid in /run/vmhost-heartbeat.pid) and whatever
# it runs (its `sleep 30`, its ps) belong to the test host: they are never a leak.
#   ps -o pid=,ppid=,… | without_heartbeat   # the lines of processes outside the heartbeat's tree
without_heartbeat() {
  hb=$(cat /run/vmhost-heartbeat.pid 2>/dev/null || echo 0)
  busybox awk -v hb="${hb:-0}" '
    { line[NR] = $0; pid[NR] = $1 + 0; parent[$1 + 0] = $2 + 0 }
    END {
      for (i = 1; i <= NR; i++) {
        q = pid[i]; n = 0
        while (q > 1 && q != hb && n++ < 1000) q = parent[q]
        if (hb <= 1 || q != hb) print line[i]
      }
    }'
}
