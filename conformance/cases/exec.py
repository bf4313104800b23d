"""Cases: runc CLI exec: a process joining a running container."""
import json
import os

from ..core import case, check, eq, M, Skip
from ..host import host_cgroup_dir, own_cgroups, remove_cgroups
from ..context import parse_report, running
from ..inside import InsideCgroup, cgroup_lines, exec_probe, looks_inside, own_cgroup_view
from .cgroups import copy_cpuset


@case("exec-options", spec="runc CLI exec --env/--cwd/--user and exit status")
def t_exec_opts(c):
    cid, _, _ = c.create(c.config(["/probe", "sleep", "60"]))
    c.rt.ok("start", cid)
    p = c.rt.ok("exec", "--env", "EXECVAR=1", "--cwd", "/tmp", "--user", "1000:1000", cid,
                "/probe", "id", "cwd", "getenv", "EXECVAR", "end", timeout=15)
    rep = parse_report(p.out)
    eq(rep.get("uid"), M(c, "1000", "0"), "uid")
    eq(rep.get("gid"), "1000", "gid")
    eq(rep.get("cwd"), "/tmp", "cwd")
    eq(rep.get("getenv[EXECVAR]"), "1", "EXECVAR")
    p = c.rt.call("exec", cid, "/probe", "exit", "7", timeout=15)
    eq(p.returncode, 7, "exit status of exec")


@case("exec", spec="runc CLI exec: a process joins the running container's namespaces")
def t_exec(c):
    cid, _, _ = c.create(c.config(["/probe", "sleep", "60"]))
    c.rt.ok("start", cid)
    pid = c.rt.state(cid)["pid"]
    names = ("pid", "net", "ipc", "uts", "mnt")
    # The container's init: on the host through the state pid, or (a microvm runtime, whose state
    # pid is the VMM) as /proc/1 inside the container's pid namespace.
    p = c.rt.ok("exec", cid, "/probe", "ns", *(a for n in names for a in ("stat", f"/proc/1/ns/{n}")), "end", timeout=15)
    rep = parse_report(p.out)
    for n in names:
        init = rep.get(f"stat[/proc/1/ns/{n}].target") if looks_inside(c) else os.readlink(f"/proc/{pid}/ns/{n}")
        eq(rep.get(f"ns.{n}"), M(c, init, "x"), f"exec'd process ns.{n}")


@case("exec-process-json-no-user", spec="runc: exec --process without a user runs as 0:0")
def t_exec_no_user(c):
    cfg = c.config(["/probe", "sleep", "60"])
    cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
    cid, _ = running(c, cfg)
    pj = os.path.join(c.dir, "process.json")
    with open(pj, "w") as f:
        json.dump({"args": ["/probe", "id", "end"], "cwd": "/", "env": ["PATH=/bin"]}, f)
    p = c.rt.ok("exec", "--process", pj, cid)
    eq(parse_report(p.out).get("uid"), M(c, "0", "1000"), "uid")


@case("exec-cap-unknown", spec="runc: exec --cap with an unknown capability warns and runs")
def t_exec_cap_unknown(c):
    cid, _ = running(c)
    p = c.rt.call("exec", "--cap", "CAP_UNKNOWN", cid, "/probe", "end")
    eq(p.returncode, M(c, 0, 1), "exit status")
    check("CAP_UNKNOWN" in p.err, f"no warning naming CAP_UNKNOWN: {p.err.strip()[:200]!r}")


@case("exec-failure-exit-255", spec="runc CLI: exec failing before the process starts exits 255")
def t_exec_255(c):
    cid, _ = running(c)
    p = c.rt.call("exec", "--pid-file", os.path.join(c.dir, "no", "such", "pid"), cid, "/probe", "end")
    eq(p.returncode, M(c, 255, 1), "exec with a bad --pid-file directory")
    c.rt.ok("pause", cid)
    p = c.rt.call("exec", cid, "/probe", "end")
    c.rt.ok("resume", cid)
    eq(p.returncode, 255, "exec in a paused container")


@case("exec-cgroup-sub", spec="runc CLI exec --cgroup: the process runs in an existing sub-cgroup of the container's; "
                              "a path outside it or an unknown controller is refused")
def t_exec_cgroup(c):
    if looks_inside(c):
        return exec_cgroup_inside(c)
    cid, _, _ = c.create(c.config(["/probe", "sleep", "60"]))
    c.rt.ok("start", cid)
    pid = c.rt.state(cid)["pid"]
    own = {ctrls: path for ctrls, path in own_cgroups().items()}
    placed = {}  # controllers -> the container's cgroup, where the runtime placed it (not ours)
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f.read().splitlines():
            _i, ctrls, path = line.split(":", 2)
            d = host_cgroup_dir(pid, ctrls.split(",")[0] if ctrls else "")
            if d and path != own.get(ctrls) and os.path.isdir(d):
                placed[ctrls] = (path, d)
    if not placed:
        raise Skip("the runtime placed the container in no cgroup of its own")
    made = []
    try:
        for _path, d in placed.values():
            os.mkdir(os.path.join(d, "sub"))
            made.append(os.path.join(d, "sub"))
            copy_cpuset(d, os.path.join(d, "sub"))
        rep = parse_report(c.rt.ok("exec", "--cgroup", "sub", cid, "/probe", "cgroup", "end", timeout=15).out)
        inside = dict(l.split(":", 2)[1:] for l in rep.get("file[/proc/self/cgroup]", "").split("|") if l.count(":") >= 2)
        for ctrls, (path, _d) in placed.items():
            eq(inside.get(ctrls), M(c, path.rstrip("/") + "/sub", path), f"exec --cgroup sub: cgroup of {ctrls or 'cgroup2'}")
        for bad in ("../escape", "nosuchcontroller:sub"):
            p = c.rt.call("exec", "--cgroup", bad, cid, "/probe", "end", timeout=15)
            check(p.returncode != 0, f"exec --cgroup {bad} succeeded")
        err = c.rt.call("exec", "--cgroup", "../escape", cid, "/probe", "end", timeout=15).err
        check("sub cgroup" in err, f"exec --cgroup ../escape: error does not say why: {err.strip()[:200]!r}")
    finally:
        remove_cgroups(reversed(made))


def exec_cgroup_inside(c):
    """exec-cgroup-sub where the state pid is not the container's (a microvm runtime: the host
    cgroup the state pid is in holds the VM, the container's cgroups are the guest's): the
    sub-cgroup is made from inside (a cgroup namespace and a writable cgroup mount), and the
    exec'd process must be in it as it sees itself (its cgroup namespace's root is the container's)."""
    cfg = own_cgroup_view(c.config(["/probe", "sleep", "60"]))
    for m in cfg["mounts"]:
        if m.get("destination") == "/sys/fs/cgroup":
            m["options"] = [o for o in m["options"] if o != "ro"] + ["rw"]
    cid, _, _ = c.create(cfg)
    c.rt.ok("start", cid)
    d = InsideCgroup(c, cid, "pids")
    sub = f"{d.dir}/sub"
    c.rt.ok("exec", cid, "mkdir", sub, timeout=15)  # (busybox's: the probe's mkdir removes what it made)
    arg = "sub" if d.version == 2 else "pids:sub"
    rep = parse_report(c.rt.ok("exec", "--cgroup", arg, cid, "/probe", "cgroup", "end", timeout=15).out)
    lines = dict((ctrls, path) for ctrls, path in cgroup_lines(rep.get("file[/proc/self/cgroup]", "")))
    key = "" if d.version == 2 else next((k for k in lines if "pids" in k.split(",")), "pids")
    eq(lines.get(key), M(c, "/sub", "/"), f"exec --cgroup {arg}: cgroup of {key or 'cgroup2'} as the exec'd process sees it")
    for bad in ("../escape", "nosuchcontroller:sub"):
        p = c.rt.call("exec", "--cgroup", bad, cid, "/probe", "end", timeout=15)
        check(p.returncode != 0, f"exec --cgroup {bad} succeeded")
    err = c.rt.call("exec", "--cgroup", "../escape", cid, "/probe", "end", timeout=15).err
    check("sub cgroup" in err, f"exec --cgroup ../escape: error does not say why: {err.strip()[:200]!r}")
