"""Cases: runc CLI exec: a process joining a running container."""
import json
import os

from ..core import case, check, eq, M
from ..context import parse_report, running


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
    p = c.rt.ok("exec", cid, "/probe", "ns", "end", timeout=15)
    rep = parse_report(p.out)
    for n in ("pid", "net", "ipc", "uts", "mnt"):
        eq(rep.get(f"ns.{n}"), M(c, os.readlink(f"/proc/{pid}/ns/{n}"), "x"), f"exec'd process ns.{n}")


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
