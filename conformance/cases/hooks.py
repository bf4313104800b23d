"""Cases: POSIX-platform hooks (config.md Hooks): order, state on stdin, failures, timeouts,
where and how they run."""
import json
import os
import time

from ..core import case, check, eq, Fail, M, Skip, settings


@case("hooks", features=["hooks.prestart", "hooks.createRuntime", "hooks.createContainer",
                         "hooks.startContainer", "hooks.poststart", "hooks.poststop"],
      spec="config.md POSIX-platform Hooks; runtime.md Lifecycle order")
def t_hooks(c):
    log = os.path.join(c.dir, "hooklog")
    os.makedirs(log)
    os.chmod(log, 0o777)
    cfg = c.config(["/probe", "end"])
    cfg["mounts"].append({"destination": "/hooklog", "type": "bind", "source": log, "options": ["rbind", "rw"]})

    def hook(kind, inside=False):
        d = "/hooklog" if inside else log
        return {"path": "/bin/sh", "args": ["sh", "-c", f'cat > {d}/{kind}.json; echo {kind} >> {d}/order', kind]}
    cfg["hooks"] = {
        "prestart": [hook("prestart")],
        "createRuntime": [hook("createRuntime")],
        "createContainer": [hook("createContainer")],
        "startContainer": [hook("startContainer", inside=True)],
        "poststart": [hook("poststart")],
        "poststop": [hook("poststop")],
    }
    cid, b, out = c.create(cfg)
    order_after_create = c.read(os.path.join(log, "order")).split()
    c.rt.ok("start", cid)
    c.wait_stopped(cid)
    time.sleep(0.1)
    c.rt.ok("delete", cid)
    order = c.read(os.path.join(log, "order")).split()
    want = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]
    eq(order_after_create, want[:3], "hooks run by create")
    eq(order, M(c, want, list(reversed(want))), "hook order")
    for k in want:
        try:
            st = json.loads(c.read(os.path.join(log, k + ".json")))
        except ValueError:
            raise Fail(f"{k} hook: stdin is not the state JSON")
        eq(st.get("id"), cid, f"{k} hook state.id")
        check(st.get("ociVersion"), f"{k} hook state lacks ociVersion")
        eq(os.path.realpath(st.get("bundle", "")), os.path.realpath(b), f"{k} hook state.bundle")


FAILING_HOOK = {"path": "/bin/sh", "args": ["sh", "-c", "cat >/dev/null; exit 1"]}


@case("hook-failure-aborts-create", features=["hooks.createRuntime"],
      spec="config.md: a failing createRuntime hook MUST make the runtime error and stop")
def t_hook_fail(c):
    cfg = c.config(["/probe", "end"])
    # The hook reads its stdin before failing, so this case tests only "a failing hook aborts create"
    # (hooks-ignoring-stdin covers hooks that exit without reading).
    cfg["hooks"] = {"createRuntime": [FAILING_HOOK]}
    b = c.bundle(cfg)
    cid = c.new_id()
    p = c.rt.call("create", "--bundle", b, cid)
    check(M(c, p.returncode != 0, p.returncode == 0), "create succeeded although a createRuntime hook failed")
    p = c.rt.call("state", cid)
    if p.returncode == 0:
        st = json.loads(p.out)
        check(st.get("status") not in ("created", "running"), f"container left in {st.get('status')}")


@case("hook-timeout", features=["hooks.createRuntime"], spec="config.md hooks timeout: a hook exceeding it fails")
def t_hook_timeout(c):
    cfg = c.config(["/probe", "end"])
    # (Scaled: on a slow host create itself takes longer; a hook left to finish still takes longer.)
    scale = settings.time_scale
    cfg["hooks"] = {"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", str(int(30 * scale))],
                                       "timeout": M(c, 1, int(60 * scale))}]}
    t0 = time.time()
    try:
        c.create(cfg)
        raise Skip("")
    except Fail:
        pass
    except Skip:
        raise Fail("create succeeded although a createRuntime hook exceeded its timeout")
    check(time.time() - t0 < 15 * scale, f"create took {time.time() - t0:.1f}s with a 1s hook timeout")


@case("hooks-ignoring-stdin", features=["hooks.prestart", "hooks.createRuntime", "hooks.poststart", "hooks.poststop"],
      spec="config.md hooks: state on stdin; a hook need not read it (e.g. /bin/true)")
def t_hooks_nostdin(c):
    true = {"path": "/bin/true", "args": ["true"]}
    for round_ in range(3):
        cfg = c.config(["/probe", "end"])
        cfg["hooks"] = {k: [true] * 8 for k in ("prestart", "createRuntime", "poststart", "poststop")}
        if c.mutate:
            cfg["hooks"]["prestart"] = [{"path": "/bin/false", "args": ["false"]}]
        cid, _, out = c.create(cfg)
        c.rt.ok("start", cid)
        c.wait_stopped(cid)
        c.rt.ok("delete", cid)
        eq(c.read(out), "end=1\n", f"container output (round {round_})")


@case("hooks-post-failures-warn", features=["hooks.poststart", "hooks.poststop"],
      spec="config.md: failing poststart/poststop hooks only warn; lifecycle continues")
def t_post_fail(c):
    log = os.path.join(c.dir, "hooklog")
    os.makedirs(log)
    cfg = c.config(["/probe", "end"])
    cfg["hooks"] = {
        "poststart": [FAILING_HOOK,
                      {"path": "/bin/sh", "args": ["sh", "-c", f"echo poststart2 >> {log}/order"]}],
        "poststop": [FAILING_HOOK,
                     {"path": "/bin/sh", "args": ["sh", "-c", f"echo poststop2 >> {log}/order"]}],
    }
    cid, _, out = c.create(cfg)
    c.rt.ok("start", cid)
    c.wait_stopped(cid)
    eq(c.read(out), "end=1\n", "container output")
    c.rt.ok("delete", cid)
    eq(c.read(os.path.join(log, "order")).split(), M(c, ["poststart2", "poststop2"], []), "hooks after the failing one")


@case("hooks-startcontainer-confined", features=["hooks.startContainer", "linux.seccomp"],
      spec="runc: startContainer hooks run with the container's seccomp filter loaded and get stdio only")
def t_start_hook_confined(c):
    for nnp in (False, True):
        cfg = c.config(["/bin/cat", "/hookout"])
        cfg["process"]["noNewPrivileges"] = nnp
        cfg["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                                   "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
        cfg["hooks"] = {"startContainer": [{"path": "/bin/sh", "args": [
            "sh", "-c", "/probe seccomp mkdir /tmp/h > /hookout; echo fds=$(ls /proc/self/fd | tr '\\n' ' ') >> /hookout"]}]}
        rep = c.probe(cfg)
        eq(rep.get("seccomp"), M(c, "2", "0"), f"hook's Seccomp mode (noNewPrivileges {nnp})")
        eq(rep.get("mkdir[/tmp/h]"), "1", f"errno of the hook's mkdir (noNewPrivileges {nnp})")
        eq(rep.get("fds"), "0 1 2 3", "the hook's fds (ls holds 3)")


@case("hooks-cwd-env", features=["hooks.prestart", "hooks.createContainer"],
      spec="runc: createContainer hooks run in the container's root; hooks without env inherit the runtime's")
def t_hooks_cwd_env(c):
    log = os.path.join(c.dir, "hooklog")
    os.makedirs(log)
    cfg = c.config(["/probe", "end"])
    cfg["hooks"] = {"createContainer": [{"path": "/bin/sh", "args": ["sh", "-c", f"cat >/dev/null; pwd > {log}/cwd"]}],
                    "prestart": [{"path": "/bin/sh", "args": ["sh", "-c", f"cat >/dev/null; env > {log}/env"]}]}
    os.environ["OCI_CONFORMANCE_MARK"] = "hooks-cwd-env"
    try:
        _, b, _ = c.create(cfg)
    finally:
        del os.environ["OCI_CONFORMANCE_MARK"]
    eq(os.path.realpath(c.read(os.path.join(log, "cwd")).strip()), M(c, os.path.realpath(os.path.join(b, "rootfs")), "/"),
       "createContainer hook cwd")
    check("OCI_CONFORMANCE_MARK=hooks-cwd-env" in c.read(os.path.join(log, "env")), "prestart hook did not inherit the runtime's environment")
