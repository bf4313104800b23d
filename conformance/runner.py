"""Running cases: one case with its timeout and cleanup, a suite as TAP, --unshare-unified's re-exec,
and --self-test (every case must be able to fail)."""
import os
import shutil
import signal
import sys
import tempfile
import traceback

from .cases import CASES
from .context import Ctx, Env
from .core import RUN, Fail, Skip, settings
from .runtime import Runtime


def run_case(env, fn, timeout=None):
    """-> (status, reason): status in pass/fail/skip."""
    timeout = int((timeout or settings.case_timeout) * settings.time_scale)
    c = Ctx(env, fn.case_name)

    def on_alarm(_s, _f):
        raise Fail(f"timed out after {timeout}s")
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(timeout)
    try:
        fn(c)
        result = ("pass", "")
    except Fail as e:
        result = ("fail", str(e))
    except Skip as e:
        result = ("skip", str(e))
    except Exception as e:  # a bug in the case or a crash: a failure, with where
        tb = traceback.extract_tb(e.__traceback__)[-1]
        result = ("fail", f"{type(e).__name__}: {e} ({os.path.basename(tb.filename)} line {tb.lineno})")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        try:
            leaks = c.cleanup()
        except Exception as e:
            leaks = [f"cleanup crashed: {e!r}"]
    if leaks and result[0] == "pass":
        result = ("fail", "left behind after delete --force: " + "; ".join(leaks)[:300])
    elif leaks:
        result = (result[0], result[1] + " [also left behind: " + "; ".join(leaks)[:200] + "]")
    return result


def select_cases(names):
    if not names:
        return list(CASES)
    by = {f.case_name: f for f in CASES}
    missing = [n for n in names if n not in by]
    if missing:
        sys.exit(f"unknown case(s): {', '.join(missing)}; see --list")
    return [by[n] for n in names]


def run_suite(runtime, cases, out=sys.stdout, mutate=False):
    env = Env(runtime, mutate=mutate)
    results = {}
    print(f"1..{len(cases)}", file=out, flush=True)
    try:
        for i, fn in enumerate(cases, 1):
            status, reason = run_case(env, fn)
            results[fn.case_name] = (status, reason)
            if status == "pass":
                print(f"ok {i} - {fn.case_name}", file=out, flush=True)
            elif status == "skip":
                print(f"ok {i} - {fn.case_name} # SKIP {reason}", file=out, flush=True)
            else:
                print(f"not ok {i} - {fn.case_name} # {reason}", file=out, flush=True)
    finally:
        shutil.rmtree(env.workdir, ignore_errors=True)
    npass = sum(1 for s, _ in results.values() if s == "pass")
    nfail = sum(1 for s, _ in results.values() if s == "fail")
    skipped = [n for n, (s, _) in results.items() if s == "skip"]
    line = f"{npass} passed, {nfail} failed"
    if skipped:
        line += f", {len(skipped)} skipped ({', '.join(skipped)})"
    print(line, file=out, flush=True)
    return results


# ---------------------------------------------------------------------------------------------
# --unshare-unified: re-exec inside a private mount namespace with /sys/fs/cgroup/unified gone

def reexec_unshared(argv):
    if os.environ.get("OCI_CONFORMANCE_UNSHARED") == "1":
        return
    os.environ["OCI_CONFORMANCE_UNSHARED"] = "1"
    script = ('mount --make-rprivate / && { umount /sys/fs/cgroup/unified 2>/dev/null || true; } && '
              'exec "$@"')
    os.execvp("unshare", ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
                          sys.executable, RUN] + argv)


# ---------------------------------------------------------------------------------------------
# --self-test: each case must be able to fail

FAKE_RUNTIME = """#!/bin/sh
# A fake runtime: pretends every verb succeeds and runs nothing.
for a in "$@"; do case "$a" in state) echo '{"ociVersion":"1.0.2","id":"x","status":"stopped","pid":0,"bundle":"/"}';; esac; done
exit 0
"""


def self_test(runtime_path):
    ok = True
    with tempfile.TemporaryDirectory(prefix="oci-conf-selftest-") as d:
        fake = os.path.join(d, "fake-runtime")
        with open(fake, "w") as f:
            f.write(FAKE_RUNTIME)
        os.chmod(fake, 0o755)
        null = open(os.devnull, "w")
        print("# against a fake runtime that pretends success: every case must fail", flush=True)
        res = run_suite(Runtime(fake, os.path.join(d, "root")), list(CASES), out=null)
        for name, (s, why) in res.items():
            good = s != "pass"
            ok &= good
            print(f"{'ok' if good else 'not ok'} - fake runtime: {name} {s}", flush=True)
        if runtime_path:
            print(f"# against {runtime_path} with deliberately wrong expectations: passing cases must fail", flush=True)
            rt = Runtime(runtime_path, os.path.join(d, "root2"))
            normal = run_suite(rt, list(CASES), out=null)
            mutated = run_suite(rt, [f for f in CASES if normal[f.case_name][0] == "pass"], out=null, mutate=True)
            for name, (s, why) in mutated.items():
                good = s == "fail"
                ok &= good
                print(f"{'ok' if good else 'not ok'} - wrong expectation: {name} {s} {why[:100]}", flush=True)
    print("self-test " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1
