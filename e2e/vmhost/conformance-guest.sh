#!/bin/sh
# Inside the VM test host (e2e/vmhost/conformance.sh runs it): the conformance suite with runc,
# then with brig, which must pass every case runc passes here and every case its column in
# conformance/RESULTS.md records as passing. Results go to /work/out/{runc,brig}.{json,tap}.
#   conformance-guest.sh LAYOUT [CASE…]
set -u
layout=$1; shift
rootless=""; [ "$layout" = rootless ] && rootless=--rootless
cd /work/repo
echo "# layout $layout: $(id -un) in $(cut -d: -f3 /proc/self/cgroup)"
python3 conformance/run $rootless --runtime /usr/sbin/runc --json /work/out/runc.json "$@" > /work/out/runc.tap 2>&1
echo "# runc $(runc --version | head -1): $(tail -1 /work/out/runc.tap)"
python3 conformance/run $rootless --runtime "$(pwd)/.build/release/brig" --json /work/out/brig.json \
  --at-least /work/out/runc.json --baseline "brig v2 $layout" "$@" > /work/out/brig.tap 2>&1
rc=$?
grep -v '^ok ' /work/out/brig.tap
exit $rc
