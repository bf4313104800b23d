"""Cases: the lifecycle (runtime.md Lifecycle, Operations): create/start/state/kill/delete,
run, container ids, and the runc CLI options of create."""
import os
import time

from ..core import case, check, eq, Fail, M, Skip, until
from ..host import pid_alive
from ..context import parse_report, running


@case("lifecycle", spec="runtime.md Lifecycle, State, create/start/kill/delete")
def t_lifecycle(c):
    cfg = c.config(["/probe", "pid", "sleep", "60"])
    cid, b, out = c.create(cfg)
    st = c.rt.state(cid)
    for k in ("ociVersion", "id", "status", "pid", "bundle"):
        check(k in st, f"state lacks {k}: {st}")
    eq(st["id"], cid, "state.id")
    eq(st["status"], M(c, "created", "running"), "status after create")
    check(isinstance(st["pid"], int) and st["pid"] > 0, f"pid after create: {st['pid']!r}")
    check(pid_alive(st["pid"]), "created container's pid is not alive")
    eq(os.path.realpath(st["bundle"]), os.path.realpath(b), "state.bundle")
    time.sleep(0.3)
    eq(c.read(out), "", "output of the user program before start (it MUST NOT run at create)")
    c.rt.ok("start", cid)
    eq(c.rt.state(cid)["status"], "running", "status after start")
    deadline = until(5)
    while "pid=" not in c.read(out) and time.time() < deadline:
        time.sleep(0.05)
    eq(parse_report(c.read(out)).get("pid"), "1", "the user program's pid in its pid namespace")
    c.rt.ok("kill", cid, "KILL")
    c.wait_stopped(cid, 5)
    c.rt.ok("delete", cid)
    p = c.rt.call("state", cid)
    check(p.returncode != 0, "state after delete succeeded")
    check(not pid_alive(st["pid"]), "process alive after delete")


@case("start-twice", spec="runtime.md start: MUST generate an error if not created")
def t_start_twice(c):
    cid, _, _ = c.create(c.config(["/probe", "sleep", "60"]))
    c.rt.ok("start", cid)
    p = c.rt.call("start", cid)
    check(M(c, p.returncode != 0, p.returncode == 0), "second start succeeded")
    eq(c.rt.state(cid)["status"], "running", "status after second start")


@case("start-stopped", spec="runtime.md start on a stopped container")
def t_start_stopped(c):
    cid, _, _ = c.create(c.config(["/probe", "end"]))
    c.rt.ok("start", cid)
    c.wait_stopped(cid)
    p = c.rt.call("start", cid)
    check(M(c, p.returncode != 0, p.returncode == 0), "start of a stopped container succeeded")


@case("delete-running", spec="runtime.md delete: MUST generate an error if not stopped")
def t_delete_running(c):
    cid, _, _ = c.create(c.config(["/probe", "sleep", "60"]))
    c.rt.ok("start", cid)
    p = c.rt.call("delete", cid)
    check(M(c, p.returncode != 0, p.returncode == 0), "delete of a running container without --force succeeded")
    eq(c.rt.state(cid)["status"], "running", "status after refused delete")


@case("unknown-id", spec="runtime.md: operations on a container that does not exist MUST error")
def t_unknown(c):
    for verb in (["state"], ["start"], ["kill"], ["delete"]):
        args = verb + ["conformance-no-such-container"] + (["KILL"] if verb == ["kill"] else [])
        p = c.rt.call(*args)
        check(M(c, p.returncode != 0, p.returncode == 0), f"{verb[0]} of an unknown id exited 0")


@case("create-duplicate-id", spec="runtime.md create: MUST error if the id is not unique")
def t_dup(c):
    cid, _, _ = c.create(c.config(["/probe", "sleep", "60"]))
    b = c.bundle(c.config())
    p = c.rt.call("create", "--bundle", b, cid)
    check(M(c, p.returncode != 0, p.returncode == 0), "create with an existing id succeeded")
    eq(c.rt.state(cid)["status"], "created", "original container after duplicate create")


@case("kill-signals", spec="runtime.md kill: signal by name and number")
def t_kill(c):
    script = ('trap "echo usr1" USR1; trap "echo usr2" USR2; trap "echo term; exit 0" TERM; '
              'echo ready; while :; do sleep 0.05; done')
    cid, _, out = c.create(c.config(["/bin/sh", "-c", script]))
    c.rt.ok("start", cid)
    deadline = until(5)
    while "ready" not in c.read(out) and time.time() < deadline:
        time.sleep(0.05)
    want = []
    for sig, word in (("USR1", "usr1"), ("SIGUSR2", "usr2"), ("10", "usr1"), ("TERM", "term")):
        c.rt.ok("kill", cid, sig)
        want.append(word)
        deadline = until(5)
        while c.read(out).split().count(word) < want.count(word) and time.time() < deadline:
            time.sleep(0.05)
    c.wait_stopped(cid, 5)
    got = c.read(out).split()[1:]
    eq(got, M(c, want, want[:-1]), "signals the container saw")


@case("kill-default-term", spec="runtime.md kill: default signal SIGTERM")
def t_kill_default(c):
    script = 'trap "echo term; exit 0" TERM; echo ready; while :; do sleep 0.05; done'
    cid, _, out = c.create(c.config(["/bin/sh", "-c", script]))
    c.rt.ok("start", cid)
    deadline = until(5)
    while "ready" not in c.read(out) and time.time() < deadline:
        time.sleep(0.05)
    c.rt.ok("kill", cid)
    c.wait_stopped(cid, 5)
    eq(c.read(out).split(), M(c, ["ready", "term"], ["ready"]), "output")


@case("delete-created", spec="runtime.md delete: deleting a container that is not stopped MUST error (created)")
def t_delete_created(c):
    cid, _, _ = c.create(c.config(["/probe", "sleep", "60"]))
    p = c.rt.call("delete", cid)
    check(M(c, p.returncode != 0, p.returncode == 0), "delete of a created container without --force succeeded")
    eq(c.rt.state(cid)["status"], "created", "status after refused delete")


@case("run-detach", spec="runc CLI: run --detach leaves the container running")
def t_run_detach(c):
    b = c.bundle(c.config(["/probe", "sleep", "60"]))
    cid = c.new_id()
    with open(os.path.join(c.dir, "run.out"), "wb") as fo:
        c.rt.ok("run", "--detach", "--bundle", b, cid, stdout=fo, stderr=fo)
    st = c.rt.state(cid)
    eq(st["status"], M(c, "running", "created"), "status after run --detach")
    check(pid_alive(st["pid"]), "pid not alive")


@case("kill-created", spec="runtime.md kill: a created container can be signalled")
def t_kill_created(c):
    cid, _, out = c.create(c.config(["/probe", "end"]))
    st = c.rt.state(cid)
    eq(st.get("status"), "created", "status after create")
    check(pid_alive(st.get("pid", 0)), "the created container's pid is not alive")
    c.rt.ok("kill", cid, "KILL")
    c.wait_stopped(cid, 5)
    deadline = until(3)
    while pid_alive(st["pid"]) and time.time() < deadline:
        time.sleep(0.05)
    check(not pid_alive(st["pid"]), "pid alive after kill KILL")
    eq(c.read(out), M(c, "", "end=1\n"), "the user program's output (it must never have run)")


@case("delete-force", spec="runc CLI: delete --force kills a running container")
def t_delete_force(c):
    cid, _, _ = c.create(c.config(["/probe", "sleep", "60"]))
    c.rt.ok("start", cid)
    pid = c.rt.state(cid)["pid"]
    c.rt.ok("delete", "--force", cid)
    check(M(c, c.rt.call("state", cid).returncode != 0, False), "state after delete --force succeeded")
    deadline = until(3)
    while pid_alive(pid) and time.time() < deadline:
        time.sleep(0.05)
    check(not pid_alive(pid), f"pid {pid} alive after delete --force")


@case("delete-force-created", spec="runc CLI: delete --force of a created container")
def t_delete_force_created(c):
    cid, _, _ = c.create(c.config(["/probe", "sleep", "60"]))
    pid = c.rt.state(cid)["pid"]
    c.rt.ok("delete", "--force", cid)
    check(M(c, c.rt.call("state", cid).returncode != 0, False), "state after delete --force succeeded")
    deadline = until(3)
    while pid_alive(pid) and time.time() < deadline:
        time.sleep(0.05)
    check(not pid_alive(pid), f"pid {pid} alive after delete --force")


@case("run-exit-status", spec="runc CLI: run exits with the container's status")
def t_run_exit(c):
    b = c.bundle(c.config(["/probe", "exit", "42"]))
    cid = c.new_id()
    p = c.rt.call("run", "--bundle", b, cid, timeout=20)
    eq(p.returncode, M(c, 42, 0), "exit status of run")


@case("state-annotations", spec="runtime.md State: annotations from the config")
def t_annotations(c):
    cfg = c.config(["/probe", "sleep", "60"])
    cfg["annotations"] = {"org.example.conformance": "yes", "org.example.empty": ""}
    cid, _, _ = c.create(cfg)
    st = c.rt.state(cid)
    eq(st.get("annotations"), M(c, cfg["annotations"], {}), "state.annotations")


@case("invalid-config", spec="runtime.md create: MUST generate an error for an invalid config; nothing created")
def t_invalid(c):
    for what, mutate in (("unknown namespace type", lambda cfg: cfg["linux"]["namespaces"].append({"type": "bogus"})),
                         ("missing root.path", lambda cfg: cfg["root"].__setitem__("path", "no-such-rootfs")),
                         ("no process.args", lambda cfg: cfg["process"].__setitem__("args", []))):
        cfg = c.config(["/probe", "end"])
        mutate(cfg)
        if c.mutate:
            cfg = c.config(["/probe", "end"])
        try:
            cid, _, _ = c.create(cfg)
            raise Skip("")  # created: handled below
        except Fail:
            pass  # create failed, as it must
        except Skip:
            raise Fail(f"create with {what} succeeded")
        cid = c.ids[-1]
        check(c.rt.call("state", cid).returncode != 0, f"a container exists after a failed create ({what})")


@case("preserve-fds", spec="runc CLI: create --preserve-fds N passes fds 3..3+N-1")
def t_preserve(c):
    path = os.path.join(c.dir, "fd3")
    with open(path, "w") as f:
        f.write("preserved")
    # fd 3 may be in use by this process: park it and restore it afterwards.
    try:
        saved = os.dup(3)
    except OSError:
        saved = None
    fd = os.open(path, os.O_RDONLY)
    try:
        if fd != 3:
            os.dup2(fd, 3, inheritable=True)
            os.close(fd)
        os.set_inheritable(3, True)
        rep = c.probe(c.config(["/probe", "file", "/proc/self/fd/3", "readable", "/proc/self/fd/4", "end"]),
                      ["--preserve-fds", "1"], pass_fds=(3,))
    finally:
        if saved is not None:
            os.dup2(saved, 3, inheritable=False)
            os.close(saved)
        else:
            os.close(3)
    eq(rep.get("file[/proc/self/fd/3]"), M(c, "preserved", "x"), "content read from fd 3")
    eq(rep.get("readable[/proc/self/fd/4]"), "0", "fd 4 (not preserved) open")


@case("pid-file", spec="runc CLI: create --pid-file")
def t_pidfile(c):
    pf = os.path.join(c.dir, "pidfile")
    cid, _, _ = c.create(c.config(["/probe", "sleep", "60"]), ["--pid-file", pf])
    pid = c.rt.state(cid)["pid"]
    eq(c.read(pf).strip(), str(M(c, pid, pid + 1)), "pid file content")


@case("kill-signal-zero", spec="runc CLI: kill ID 0 (and kill --all ID 0) checks existence")
def t_kill_zero(c):
    cid, _ = running(c)
    for a in ((), ("--all",)):
        p = c.rt.call("kill", *a, cid, "0")
        eq(p.returncode, M(c, 0, 1), f"kill {' '.join(a)} ID 0: {p.err.strip()[:200]}")
    eq(c.rt.state(cid)["status"], "running", "status after signal 0")
