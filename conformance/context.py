"""One case's world: the cached probe and rootfs, bundles with a base config, container ids,
and the cleanup that always runs (delete --force, leftover cgroups, temp dirs)."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

from .core import CACHE, HERE, OCI_VERSION, REPO, M, Fail, check, settings, until
from .host import leftover_cgroups, remove_cgroups
from .runtime import describe_rc


# ---------------------------------------------------------------------------------------------
# Building: probe and rootfs, cached

def build_probe():
    os.makedirs(CACHE, exist_ok=True)
    src = os.path.join(HERE, "probe", "probe.c")
    out = os.path.join(CACHE, "probe")
    if not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(src):
        subprocess.run(["gcc", "-static", "-O2", "-Wall", "-o", out + ".tmp", src], check=True)
        os.replace(out + ".tmp", out)
    return out


def build_rootfs():
    rootfs = os.path.join(CACHE, "rootfs")
    script = os.path.join(REPO, "scripts", "make-rootfs.sh")
    stamp = os.path.join(CACHE, "rootfs.stamp")
    if not os.path.exists(stamp):
        subprocess.run([script, rootfs], check=True, stdout=subprocess.DEVNULL)
        open(stamp, "w").close()
    return rootfs


# ---------------------------------------------------------------------------------------------
# Bundles and configs

def base_config(args):
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {k: list(DEFAULT_CAPS) for k in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": False},
        "hostname": "conformance",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
        ],
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
        },
    }


DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
CAP_NAMES = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
    "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
]


def capmask(names):
    m = 0
    for n in names:
        m |= 1 << CAP_NAMES.index(n)
    return m


def rootless_config(cfg):
    """runc's ToRootless, minus dropping resources (a delegated cgroup subtree takes them): a user
    namespace mapping this user to root, no uid=/gid= mount options."""
    lx = cfg.setdefault("linux", {})
    if not any(n.get("type") == "user" for n in lx.get("namespaces", [])):
        lx.setdefault("namespaces", []).append({"type": "user"})
        lx["uidMappings"] = [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
        lx["gidMappings"] = [{"containerID": 0, "hostID": os.getegid(), "size": 1}]
    for m in cfg.get("mounts", []):
        if "options" in m:
            m["options"] = [o for o in m["options"] if not o.startswith(("uid=", "gid="))]
    return cfg


def parse_report(text):
    rep = {}
    for line in text.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            rep[k] = v
    return rep


# ---------------------------------------------------------------------------------------------
# One run (the runtime, the built probe and rootfs) and one case within it

class Env:
    def __init__(self, runtime, mutate=False):
        self.runtime = runtime
        self.mutate = mutate
        self.probe = build_probe()
        self.rootfs = build_rootfs()
        self.workdir = tempfile.mkdtemp(prefix="oci-conformance-")
        os.chmod(self.workdir, 0o755)


class Ctx:
    counter = 0

    def __init__(self, env, name):
        self.env = env
        self.rt = env.runtime
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="oci-conf-", dir=env.workdir)
        os.chmod(self.dir, 0o755)
        self.ids = []
        self.cgroup_names = []
        self.bundles = []
        self.mutate = env.mutate

    # -- bundles
    def bundle(self, cfg):
        Ctx.counter += 1
        b = os.path.join(self.dir, f"bundle{len(self.bundles)}")
        os.makedirs(b)
        os.chmod(b, 0o755)
        subprocess.run(["cp", "-a", self.env.rootfs, os.path.join(b, "rootfs")], check=True)
        shutil.copy2(self.env.probe, os.path.join(b, "rootfs", "probe"))
        os.chmod(os.path.join(b, "rootfs", "probe"), 0o755)
        if settings.rootless:
            cfg = rootless_config(json.loads(json.dumps(cfg)))
        with open(os.path.join(b, "config.json"), "w") as f:
            json.dump(cfg, f, indent=1)
        self.bundles.append(b)
        return b

    def new_id(self):
        cid = f"conf-{os.getpid()}-{Ctx.counter}-{len(self.ids)}-{self.name}"[:60]
        self.ids.append(cid)
        return cid

    def config(self, args=None):
        return base_config(args or ["/probe", "end"])

    # -- running
    def create(self, cfg, extra=(), pass_fds=(), prepare=None):
        """create only; returns (id, bundle, output path). The container's stdout goes to a file."""
        b = self.bundle(cfg)
        if prepare:
            prepare(b)
        cid = self.new_id()
        out = os.path.join(self.dir, cid + ".out")
        with open(out, "wb") as fo, open(out + ".err", "wb") as fe:
            p = self.rt.call("create", "--bundle", b, *extra, cid, stdout=fo, stderr=fe, pass_fds=pass_fds)
        if p.returncode != 0:
            raise Fail(f"create {describe_rc(p.returncode)}: {self.read(out + '.err').strip()[:300]}")
        return cid, b, out

    def read(self, path):
        try:
            with open(path, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_stopped(self, cid, timeout=10):
        deadline = until(timeout)
        while time.time() < deadline:
            st = self.rt.state(cid)
            if st.get("status") == "stopped":
                return st
            time.sleep(0.05)
        raise Fail(f"container {cid} did not stop within {timeout * settings.time_scale:g}s")

    def probe(self, cfg, extra=(), pass_fds=(), prepare=None):
        """create, start, wait until stopped; the probe's report as a dict."""
        cid, b, out = self.create(cfg, extra, pass_fds, prepare)
        self.rt.ok("start", cid)
        self.wait_stopped(cid)
        text = self.read(out)
        rep = parse_report(text)
        if "end" not in rep and cfg["process"]["args"][-1:] == ["end"]:
            raise Fail(f"probe did not finish; stdout {text[-200:]!r} stderr {self.read(out + '.err')[-300:]!r}")
        self.rt.call("delete", cid)
        return rep

    def cleanup(self):
        """delete --force every container, then remove what the runtime left behind (cgroups
        named after our ids or cgroupsPaths, and the processes in them). -> list of leaks."""
        for cid in self.ids:
            try:
                self.rt.call("delete", "--force", cid, timeout=10)
            except Fail:
                pass
        leaks = []
        names = set(self.ids) | set(self.cgroup_names)
        if settings.systemd_cgroup:  # the systemd driver's default unit: <runtime>-<id>.scope in system.slice
            names |= {f"{p}-{cid}.scope" for cid in self.ids for p in ("runc", "crun", "brig")}
        for d in leftover_cgroups(names):
            procs = []
            try:
                procs = [int(x) for x in open(os.path.join(d, "cgroup.procs")).read().split()]
            except (OSError, ValueError):
                pass
            for pid in procs:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            leaks.append(d + (f" (processes {procs})" if procs else ""))
        remove_cgroups(leftover_cgroups(names), tries=20)
        # Under --unshare-unified, /sys/fs/cgroup/unified is a plain tmpfs directory, and some
        # runtimes (crun 1.8) write their cgroup2 files into it: remove ours, they are not cgroups.
        uni = "/sys/fs/cgroup/unified"
        if os.environ.get("OCI_CONFORMANCE_UNSHARED") == "1" and os.path.isdir(uni) and not os.path.ismount(uni):
            for n in names:
                shutil.rmtree(os.path.join(uni, n), ignore_errors=True)
        shutil.rmtree(self.dir, ignore_errors=True)
        return leaks


def create_fails(c, cfg, prepare=None, extra=()):
    """create must fail; -> its stderr (and stdout)."""
    b = c.bundle(cfg)
    if prepare:
        prepare(b)
    cid = c.new_id()
    p = c.rt.call("create", "--bundle", b, *extra, cid)
    check(M(c, p.returncode != 0, p.returncode == 0), "create succeeded")
    return p.err + p.out


def running(c, cfg=None):
    cid, b, _ = c.create(cfg or c.config(["/probe", "sleep", "60"]))
    c.rt.ok("start", cid)
    return cid, b
