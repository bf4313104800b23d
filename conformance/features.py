"""--check-features: what `RUNTIME features` claims vs which cases pass (each case lists the
features.md keys it exercises)."""
import json
import shutil
import subprocess
import sys
import tempfile

from .cases import CASES
from .runner import run_suite
from .runtime import Runtime


def claimed_features(doc):
    f = set()
    for h in doc.get("hooks") or []:
        f.add(f"hooks.{h}")
    for o in doc.get("mountOptions") or []:
        f.add(f"mountOptions.{o}")
    lx = doc.get("linux") or {}
    for n in lx.get("namespaces") or []:
        f.add(f"linux.namespaces.{n}")
    if lx.get("capabilities"):
        f.add("linux.capabilities")
    for k, v in (lx.get("cgroup") or {}).items():
        if v:
            f.add(f"linux.cgroup.{k}")
    for k in ("seccomp", "apparmor", "selinux", "intelRdt"):
        if (lx.get(k) or {}).get("enabled"):
            f.add(f"linux.{k}")
    return f


def check_features(path, cases_filter=None):
    p = subprocess.run([path, "features"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        print(f"not ok - `{path} features` exited {p.returncode}: {p.stderr.decode()[:200]}")
        return 1
    claimed = claimed_features(json.loads(p.stdout))
    root = tempfile.mkdtemp(prefix="oci-conf-features-")
    res = run_suite(Runtime(path, root), list(CASES), out=sys.stderr)
    shutil.rmtree(root, ignore_errors=True)
    passing, skipped = {}, {}
    for fn in CASES:
        status, reason = res[fn.case_name][0], res[fn.case_name][1]
        for feat in fn.features:
            if status == "pass":
                passing.setdefault(feat, []).append(fn.case_name)
            elif status == "skip":
                skipped.setdefault(feat, []).append(f"{fn.case_name}: {reason}")
    bad = 0
    for feat in sorted(claimed):
        if feat in passing:
            print(f"ok - claimed {feat}: passing {', '.join(passing[feat])}")
        elif feat in skipped:
            # The host lacks what the feature needs (e.g. systemd as PID 1): its cases run on
            # another test host (e2e/vmhost layouts), not here.
            print(f"ok - claimed {feat}: # SKIP its cases skip on this host ({'; '.join(skipped[feat])})")
        else:
            bad += 1
            print(f"not ok - claimed {feat} but no case for it passes")
    for feat in sorted(set(passing) - claimed):
        if feat.startswith("linux.resources."):
            continue  # features.md has no field for resource controllers
        bad += 1
        print(f"not ok - {feat} passes ({', '.join(passing[feat])}) but is not claimed")
    print(f"features: {len(claimed)} claimed, {bad} problem(s)")
    return 1 if bad else 0
