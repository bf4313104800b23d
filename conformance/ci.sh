#!/bin/sh
# CI: run the conformance suite against the built brig and fail if any case that brig passed in
# the committed conformance/RESULTS.md fails now (known failures are reported, not fatal).
# Usage: conformance/ci.sh [BRIG]   (default: .build/debug/brig, else .build/release/brig)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
brig=${1:-}
if [ -z "$brig" ]; then
  for b in "$repo/.build/debug/brig" "$repo/.build/release/brig"; do
    [ -x "$b" ] && { brig=$b; break; }
  done
fi
[ -n "$brig" ] && [ -x "$brig" ] || { echo "conformance/ci.sh: no brig binary (build first)" >&2; exit 1; }
if [ "$(id -u)" != 0 ]; then
  echo "conformance/ci.sh: needs root to create containers; skipped" >&2
  exit 0
fi
python3 "$here/run" --runtime "$brig" --baseline brig
# The microvm backend over its host-agent transport (no VM here: docs/microvm.md), same rule.
agent=$(dirname "$brig")/brig-agent
[ -x "$agent" ] || { echo "conformance/ci.sh: no brig-agent next to $brig (swift build)" >&2; exit 1; }
BRIG_MICROVM_TRANSPORT=host-agent BRIG_AGENT="$agent" \
  python3 "$here/run" --runtime "$brig" --backend microvm --baseline "brig microvm (host-agent)"
# Every feature `brig features` claims has a passing case, and every passing case is claimed.
out=$(python3 "$here/run" --check-features "$brig" 2>/dev/null) || { echo "$out" | grep "not ok"; exit 1; }
echo "$out" | tail -1
