"""Cases: runc CLI compatibility that tools and scripts rely on: spec, list, events, ps, help."""
import json
import os

from ..core import case, check, eq, M
from ..host import unified_host
from ..context import base_config, capmask, DEFAULT_CAPS


def runc_spec_default(args):
    """What `runc spec` (1.1) writes, with a probe instead of a shell: ambient capabilities without
    an inheritable set, a `cgroup` mount without a cgroup namespace, a read-only root."""
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    cfg = base_config(args)
    cfg["process"]["capabilities"] = {k: list(caps) for k in ("bounding", "effective", "permitted", "ambient")}
    cfg["process"]["env"] = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"]
    cfg["root"]["readonly"] = True
    cfg["hostname"] = "runc"
    cfg["mounts"][2]["options"].append("gid=5")
    cfg["mounts"].append({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                          "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]})
    cfg["linux"]["resources"] = {"devices": [{"allow": False, "access": "rwm"}]}
    cfg["linux"]["maskedPaths"] = ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                                   "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"]
    cfg["linux"]["readonlyPaths"] = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
    return cfg


@case("runc-spec-default", features=["mountOptions.ro"],
      spec="runc spec's default bundle (what tools and tutorials copy) runs: ambient caps, cgroup mount, no cgroupns")
def t_runc_spec(c):
    rep = c.probe(runc_spec_default(["/probe", "caps", "mount", "/sys/fs/cgroup", "end"]))
    eq(rep.get("mount[/sys/fs/cgroup]"), M(c, "present", "absent"), "/sys/fs/cgroup in the container")
    eq(int(rep.get("cap.bounding", "0"), 16), capmask(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]), "bounding set")


@case("ps-stopped", spec="runc CLI: ps of a stopped container succeeds with no processes")
def t_ps_stopped(c):
    cid, _, out = c.create(c.config(["/probe", "end"]))
    c.rt.ok("start", cid)
    c.wait_stopped(cid)
    eq(c.read(out), "end=1\n", "the container's output (it ran, then stopped)")
    p = c.rt.call("ps", cid)
    eq(p.returncode, M(c, 0, 1), f"ps exit status ({p.err.strip()[:200]})")


@case("list-events-key-order", spec="runc CLI: list --format json and events keys in runc's order (scripts match them textually)")
def t_list_order(c):
    cid, _, _ = c.create(c.config(["/probe", "sleep", "60"]))
    p = c.rt.ok("list", "--format", "json")
    entry = next((e for e in json.loads(p.out) if e["id"] == cid), None)
    check(entry is not None, f"{cid} not listed")
    want = ["ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "owner"]
    eq([k for k in entry if k != "annotations"], M(c, want, sorted(want)), "key order")
    c.rt.ok("start", cid)
    p = c.rt.ok("events", "--stats", cid)
    check(p.out.startswith('{"type":"stats","id":' + json.dumps(cid) + ',"data":'), f"events line: {p.out[:80]!r}")


@case("spec-default-namespaces", spec="runc CLI: spec writes runc 1.1's default (pid, network, ipc, uts, mount; cgroup on a unified host)")
def t_spec_default(c):
    d = os.path.join(c.dir, "spec")
    os.makedirs(d)
    c.rt.ok("spec", "--bundle", d)
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    want = ["pid", "network", "ipc", "uts", "mount"] + (["cgroup"] if unified_host() else [])
    eq([n["type"] for n in cfg["linux"]["namespaces"]], M(c, want, []), "namespaces")
    eq(cfg["process"]["capabilities"]["bounding"], DEFAULT_CAPS, "bounding capabilities")
    eq(cfg["root"], {"path": "rootfs", "readonly": True}, "root")


RUNC_VERBS = ["checkpoint", "create", "delete", "events", "exec", "kill", "list", "pause", "ps", "restore",
              "resume", "run", "spec", "start", "state", "update"]


@case("help-every-verb", spec="runc CLI: `help VERB` and `VERB -h` give a usage text for every runc verb")
def t_help_verbs(c):
    for v in RUNC_VERBS + M(c, [], ["no-such-verb"]):
        for argv in (("help", v), (v, "-h")):
            p = c.rt.call(*argv)
            check(p.returncode == 0 and "USAGE" in p.out.upper(), f"`{' '.join(argv)}` exited {p.returncode}: {(p.err or p.out).strip()[:150]!r}")
