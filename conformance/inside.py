"""Looking at a container from inside, through the runtime's `exec`, where its state pid is not one
of the container's processes: under brig's microvm backend the state pid is the monitor/VMM on the
host (engines wait on it), and the container runs in a guest (or, over the host-agent transport,
inside brig-agent). Cases that would read /proc/<state pid>/… ask the container's own init
(/proc/1 inside its pid namespace) instead, and read its cgroup through a cgroup namespace and a
read-only cgroup mount, so the same property is checked for every runtime."""
from .core import Fail, check
from .context import parse_report


def looks_inside(c):
    """True when the state pid is not a process of the container (a microvm runtime)."""
    return c.rt.backend == "microvm"


def exec_probe(c, cid, *cmds):
    """The probe's report from a process exec'd into the running container."""
    p = c.rt.ok("exec", cid, "/probe", *cmds, "end", timeout=15)
    rep = parse_report(p.out)
    check(rep.get("end") == "1", f"exec'd probe did not finish: {p.out[-200:]!r} {p.err[-200:]!r}")
    return rep


def own_cgroup_view(cfg):
    """Gives the container a cgroup namespace and a read-only cgroup mount at /sys/fs/cgroup, so
    its own cgroup is what it sees there (as the cgroup-namespace-view case checks)."""
    lx = cfg.setdefault("linux", {})
    if not any(n.get("type") == "cgroup" for n in lx.setdefault("namespaces", [])):
        lx["namespaces"].append({"type": "cgroup"})
    if not any(m.get("destination") == "/sys/fs/cgroup" for m in cfg.setdefault("mounts", [])):
        cfg["mounts"].append({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                              "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]})
    return cfg


def cgroup_lines(text):
    """/proc/PID/cgroup as the probe prints it ('|' for newlines) -> [(controllers, path)]."""
    out = []
    for line in text.split("|"):
        parts = line.split(":", 2)
        if len(parts) == 3:
            out.append((parts[1], parts[2]))
    return out


class InsideCgroup:
    """The container's cgroup directory for one controller, as its own processes see it (with
    own_cgroup_view: /sys/fs/cgroup on cgroup2, /sys/fs/cgroup/<controller> on v1)."""

    def __init__(self, c, cid, ctrl):
        self.c, self.cid = c, cid
        rep = exec_probe(c, cid, "file", "/proc/1/cgroup", "stat", f"/sys/fs/cgroup/{ctrl}")
        lines = cgroup_lines(rep.get("file[/proc/1/cgroup]", ""))
        v1 = [ctrls for ctrls, _ in lines if ctrl in ctrls.split(",")]
        if v1:
            self.version = 1
            named = rep.get(f"stat[/sys/fs/cgroup/{ctrl}].type", "error")
            self.dir = f"/sys/fs/cgroup/{ctrl}" if named in ("dir", "link") else f"/sys/fs/cgroup/{v1[0]}"
        elif any(ctrls == "" for ctrls, _ in lines):
            self.version, self.dir = 2, "/sys/fs/cgroup"
        else:
            raise Fail(f"the container's init is in no {ctrl} cgroup: {rep.get('file[/proc/1/cgroup]')!r}")

    def read(self, name):
        path = f"{self.dir}/{name}"
        got = exec_probe(self.c, self.cid, "file", path).get(f"file[{path}]", "")
        if got.startswith("error:"):
            raise Fail(f"read {path} inside the container: errno {got[6:]}")
        return got.replace("|", "\n").strip()

    def exists(self, name):
        path = f"{self.dir}/{name}"
        return not exec_probe(self.c, self.cid, "stat", path).get(f"stat[{path}].type", "error").startswith("error")

    def __str__(self):
        return f"{self.dir} (inside {self.cid})"
