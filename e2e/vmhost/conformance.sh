#!/bin/sh
# The conformance suite on pure cgroup v2, in the VM test host, in the three layouts users run:
# root in the root cgroup, root in a systemd service's cgroup, and rootless in a delegated subtree.
# In each, runc runs the suite first and brig must pass every case runc passes, and every case
# its column ("brig v2 LAYOUT") of conformance/RESULTS.md records as passing.
#   e2e/vmhost/conformance.sh [--out DIR] [--layouts "root service rootless"] [CASE…]
# Results (JSON and TAP per runtime and layout) stay in DIR (default .cache/vmhost/results).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=$repo/.cache/vmhost/results layouts="root service rootless"
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --layouts) layouts=$2; shift 2 ;;
    *) break ;;
  esac
done
failed=""
for l in $layouts; do
  rm -rf "$out/$l"
  start=$(date +%s)
  if "$here/run" --layout "$l" --timeout 1800 --out "$out/$l" -- sh e2e/vmhost/conformance-guest.sh "$l" "$@"; then
    echo "# vmhost conformance, layout $l: ok ($(( $(date +%s) - start )) s)"
  else
    echo "# vmhost conformance, layout $l: FAILED ($(( $(date +%s) - start )) s)"
    failed="$failed $l"
  fi
done
[ -z "$failed" ] || { echo "vmhost conformance failed in:$failed" >&2; exit 1; }
