"""conformance/run's command line."""
import argparse
import os
import shutil
import sys
import tempfile

from .cases import CASES
from .core import HERE, settings
from .features import check_features
from .results import against_baseline, at_least, racy_regressions, regressions, write_json, write_results
from .runner import reexec_unshared, run_suite, select_cases, self_test
from .runtime import Runtime


def main(description):
    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runtime", help="the runtime binary (runc-compatible CLI)")
    ap.add_argument("--backend", help="passed to the runtime as the global flag --backend NAME")
    ap.add_argument("--root", help="state directory for the runtime's --root (default: a temp dir)")
    ap.add_argument("--unshare-unified", action="store_true",
                    help="run everything in a private mount namespace with /sys/fs/cgroup/unified unmounted")
    ap.add_argument("--self-test", action="store_true", help="check that the cases can fail")
    ap.add_argument("--results", nargs="+", metavar="NAME=PATH", help="write conformance/RESULTS.md")
    ap.add_argument("--results-file", default=os.path.join(HERE, "RESULTS.md"))
    ap.add_argument("--check-features", metavar="PATH", help="compare PATH features with passing cases")
    ap.add_argument("--list", action="store_true", help="list the cases")
    ap.add_argument("--json", metavar="FILE", help="also write {case: [status, reason]} to FILE")
    ap.add_argument("--baseline", metavar="COLUMN",
                    help="exit 1 only if a case that passed in RESULTS.md's COLUMN now fails, or a note in "
                         "notes.toml on COLUMN is on a case that passes now (for CI)")
    ap.add_argument("--retry-regressions", action="store_true",
                    help="with --baseline: every case that regressed runs once more (not only those with a racy "
                         "note) and its second result counts; each one that passes then is printed as FLAKY")
    ap.add_argument("--timeout", type=int, default=30, help="per-case timeout in seconds")
    ap.add_argument("--systemd-cgroup", action="store_true",
                    help="pass the global flag --systemd-cgroup (the runtime's systemd cgroup driver)")
    ap.add_argument("--rootless", action="store_true",
                    help="run as an unprivileged user: configs get a user namespace mapping it to root")
    ap.add_argument("--at-least", metavar="JSON",
                    help="exit 1 if a case that passed in JSON (another runtime's --json) fails now")
    ap.add_argument("--time-scale", type=float, default=1.0,
                    help="multiply every timeout (the case's, each CLI call's, each wait's) by this")
    ap.add_argument("cases", nargs="*")
    a = ap.parse_args()
    settings.case_timeout = a.timeout
    settings.time_scale = a.time_scale
    if a.list:
        for fn in CASES:
            print(f"{fn.case_name}\t{fn.spec}")
        return 0
    settings.rootless = a.rootless
    settings.systemd_cgroup = a.systemd_cgroup
    if os.geteuid() != 0 and not a.rootless:
        sys.exit("conformance/run needs root (it creates containers), or --rootless")
    if a.unshare_unified and not a.results:
        reexec_unshared(sys.argv[1:])
    if a.self_test:
        return self_test(a.runtime)
    if a.results:
        return write_results(a.results, a.unshare_unified, a.results_file, CASES)
    if a.check_features:
        return check_features(a.check_features)
    if not a.runtime:
        ap.error("--runtime PATH is required")
    root = a.root or tempfile.mkdtemp(prefix="oci-conf-root-")
    try:
        rt = Runtime(os.path.abspath(a.runtime) if os.sep in a.runtime else a.runtime, root, a.backend)
        res = run_suite(rt, select_cases(a.cases))
        again = []
        if a.baseline:
            again = (regressions if a.retry_regressions else racy_regressions)(res, a.baseline, a.results_file)
        if again:
            first = {n: res[n][1] for n in again}
            why = "regressed" if a.retry_regressions else f"failed, with a racy note on {a.baseline!r} (notes.toml)"
            print(f"# {why}: {', '.join(again)}; once more:", flush=True)
            res.update(run_suite(rt, select_cases(again)))
            for n in again:
                if res[n][0] == "pass":
                    print(f"# FLAKY: {n} failed ({first[n][:200]}), then passed on its retry", flush=True)
    finally:
        if not a.root:
            shutil.rmtree(root, ignore_errors=True)
    if a.json:
        write_json(res, a.json)
    worse = at_least(res, a.at_least) if a.at_least else []
    if a.baseline:
        if not against_baseline(res, a.baseline, a.results_file, [fn.case_name for fn in CASES]):
            return 1
        return 1 if worse else 0
    if a.at_least:
        return 1 if worse else 0
    return 1 if any(s == "fail" for s, _ in res.values()) else 0
