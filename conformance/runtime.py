"""The runtime under test, driven through its runc-compatible command line only."""
import json
import signal
import subprocess
import tempfile

from .core import Fail, settings


class Runtime:
    def __init__(self, path, root, backend=None):
        self.path = path
        self.root = root
        self.backend = backend

    def argv(self, *args):
        a = [self.path, "--root", self.root]
        if self.backend:
            a += ["--backend", self.backend]
        if settings.systemd_cgroup:
            a += ["--systemd-cgroup"]
        return a + list(args)

    def call(self, *args, timeout=15, stdin=subprocess.DEVNULL, stdout=None, stderr=None, input=None, pass_fds=()):
        kw = {"pass_fds": pass_fds}
        if input is not None:
            kw["input"] = input
        else:
            kw["stdin"] = stdin
        # Captured output goes to temp files, not pipes: a container started by this call may
        # inherit them and would hold a pipe open for as long as it lives.
        with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
            try:
                p = subprocess.run(self.argv(*args), timeout=timeout * settings.time_scale,
                                   stdout=fo if stdout is None else stdout,
                                   stderr=fe if stderr is None else stderr, **kw)
            except subprocess.TimeoutExpired:
                raise Fail(f"`{' '.join(args)}` timed out after {timeout * settings.time_scale:g}s")
            fo.seek(0)
            fe.seek(0)
            p.out = fo.read().decode(errors="replace")
            p.err = fe.read().decode(errors="replace")
        return p

    def ok(self, *args, **kw):
        p = self.call(*args, **kw)
        if p.returncode != 0:
            raise Fail(f"`{args[0]}` {describe_rc(p.returncode)}: {(p.err or p.out).strip()[:300]}")
        return p

    def state(self, cid):
        p = self.ok("state", cid)
        try:
            return json.loads(p.out)
        except ValueError:
            raise Fail(f"state output is not JSON: {p.out[:200]!r}")


def describe_rc(rc):
    if rc < 0:
        try:
            return f"was killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"was killed by signal {-rc}"
    return f"exited {rc}"
