"""What every part of the suite shares: paths, settings, the case registry and the assertions."""
import os
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
RUN = os.path.join(HERE, "run")  # the entry point; re-executed by --results and --unshare-unified
CACHE = os.path.join(REPO, ".cache", "conformance")
OCI_VERSION = "1.0.2"  # crun 1.8 refuses ociVersion > 1.1; every runtime accepts 1.0.2


class Settings:
    """Set once by the command line (cli.py) before any case runs."""
    # --timeout: per-case timeout in seconds.
    case_timeout = 30
    # --time-scale: every timeout and deadline is multiplied by it (slow hosts, e.g. brig's
    # microvm backend under nested virtualization, where one VM boot takes seconds).
    time_scale = 1.0
    # --rootless: configs as `runc spec --rootless` makes them, run as this user.
    rootless = False
    # --systemd-cgroup: the runtime gets the global flag (its systemd cgroup driver).
    systemd_cgroup = False


settings = Settings()


def until(seconds):
    """A deadline `seconds` (scaled) from now."""
    return time.time() + seconds * settings.time_scale


class Fail(Exception):
    pass


class Skip(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def eq(got, want, what):
    if got != want:
        raise Fail(f"{what}: got {got!r}, want {want!r}")


def M(c, value, wrong):
    """The expected value, or a deliberately wrong one under --self-test's mutation."""
    return wrong if c.mutate else value


# Every case, in registration order (conformance.cases.CASES is the suite's order).
REGISTRY = []


def case(name, features=(), spec=""):
    """Registers `fn(c)` as the case `name`: `features` are the features.md keys it exercises
    (--check-features), `spec` the spec text it tests (--list, RESULTS.md)."""
    def deco(fn):
        if any(f.case_name == name for f in REGISTRY):
            raise ValueError(f"two cases are named {name!r}")
        fn.case_name = name
        fn.features = list(features)
        fn.spec = spec
        REGISTRY.append(fn)
        return fn
    return deco
