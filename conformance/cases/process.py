"""Cases: the container's process (config.md process): args, env, cwd, user, capabilities,
rlimits, noNewPrivileges, oomScoreAdj."""
import os
import shutil

from ..core import case, eq, M
from ..context import capmask


@case("args-path-lookup", spec="config.md process.args[0]: execvp semantics (PATH lookup)")
def t_path_lookup(c):
    cfg = c.config(["probe", "args", "end"])
    cfg["process"]["env"] = ["PATH=/nonexistent:" + M(c, "/", "/nope")]
    rep = c.probe(cfg)
    eq(rep.get("arg.0"), "probe", "argv[0]")


@case("process-args-env-cwd", spec="config.md process args/env/cwd")
def t_process(c):
    cfg = c.config(["/probe", "args", "cwd", "env", "end"])
    cfg["process"]["env"] = ["PATH=/bin", "FOO=bar baz", "EMPTY="]
    cfg["process"]["cwd"] = "/tmp"
    rep = c.probe(cfg)
    eq(rep.get("arg.0"), "/probe", "argv[0]")
    eq(rep.get("arg.1"), "args", "argv[1]")
    eq(rep.get("cwd"), M(c, "/tmp", "/"), "cwd")
    eq(rep.get("env.FOO"), "bar baz", "FOO")
    eq(rep.get("env.EMPTY"), "", "EMPTY")
    eq(rep.get("env.PATH"), "/bin", "PATH")


@case("user", spec="config.md process.user uid/gid/additionalGids/umask")
def t_user(c):
    cfg = c.config(["/probe", "id", "end"])
    cfg["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [100, 5], "umask": 0o027}
    rep = c.probe(cfg)
    eq(rep.get("uid"), M(c, "1000", "0"), "uid")
    eq(rep.get("gid"), "1000", "gid")
    eq(sorted(rep.get("groups", "").split(",")), ["100", "5"] if True else [], "supplementary groups")
    eq(rep.get("umask"), "0027", "umask")


@case("capabilities", features=["linux.capabilities"],
      spec="config.md process.capabilities: all five sets (uid 1000, so exec keeps them as given)")
def t_caps(c):
    B = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SETUID"]
    E = ["CAP_KILL", "CAP_NET_BIND_SERVICE"]
    P = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    I = ["CAP_KILL", "CAP_NET_BIND_SERVICE"]
    A = ["CAP_KILL", "CAP_NET_BIND_SERVICE"]
    cfg = c.config(["/probe", "caps", "end"])
    cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
    cfg["process"]["capabilities"] = {"bounding": B, "effective": E, "permitted": P, "inheritable": I, "ambient": A}
    rep = c.probe(cfg)
    # execve as non-root: P' = E' = ambient; I and B unchanged; ambient kept.
    want = {"bounding": capmask(B), "inheritable": capmask(I), "ambient": capmask(A),
            "permitted": capmask(A), "effective": capmask(A)}
    if c.mutate:
        want["bounding"] = capmask(B + ["CAP_SYS_ADMIN"])
    for k, v in want.items():
        got = int(rep.get(f"cap.{k}", "0"), 16)
        eq(hex(got), hex(v), f"{k} set")


@case("capabilities-root", features=["linux.capabilities"],
      spec="config.md process.capabilities for uid 0: bounding limits everything")
def t_caps_root(c):
    B = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_KILL", "CAP_SYS_CHROOT"]
    cfg = c.config(["/probe", "caps", "end"])
    cfg["process"]["capabilities"] = {"bounding": B, "effective": B, "permitted": B, "inheritable": [], "ambient": []}
    rep = c.probe(cfg)
    for k in ("bounding", "effective", "permitted"):
        eq(hex(int(rep.get(f"cap.{k}", "0"), 16)), hex(capmask(M(c, B, B[:2]))), f"{k} set")
    eq(int(rep.get("cap.ambient", "1"), 16), 0, "ambient set")


@case("rlimits", spec="config.md process.rlimits")
def t_rlimits(c):
    cfg = c.config(["/probe", "rlimit", "RLIMIT_NOFILE", "rlimit", "RLIMIT_CORE", "rlimit", "RLIMIT_NPROC", "end"])
    cfg["process"]["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 900},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
        {"type": "RLIMIT_NPROC", "soft": 300, "hard": 400},
    ]
    rep = c.probe(cfg)
    eq(rep.get("rlimit[RLIMIT_NOFILE].soft"), M(c, "512", "1024"), "NOFILE soft")
    eq(rep.get("rlimit[RLIMIT_NOFILE].hard"), "900", "NOFILE hard")
    eq(rep.get("rlimit[RLIMIT_CORE].hard"), "0", "CORE hard")
    eq(rep.get("rlimit[RLIMIT_NPROC].soft"), "300", "NPROC soft")
    eq(rep.get("rlimit[RLIMIT_NPROC].hard"), "400", "NPROC hard")


@case("no-new-privileges", spec="config.md process.noNewPrivileges")
def t_nnp(c):
    for want in (True, False):
        cfg = c.config(["/probe", "nnp", "end"])
        cfg["process"]["noNewPrivileges"] = want
        rep = c.probe(cfg)
        eq(rep.get("nnp"), M(c, "1" if want else "0", "x"), f"NoNewPrivs with noNewPrivileges={want}")


@case("oom-score-adj", spec="config.md process.oomScoreAdj")
def t_oom(c):
    cur = int(open("/proc/self/oom_score_adj").read())
    val = max(cur, 0) + 123
    cfg = c.config(["/probe", "oom", "end"])
    cfg["process"]["oomScoreAdj"] = val
    rep = c.probe(cfg)
    eq(rep.get("oom_score_adj"), str(M(c, val, cur)), "oom_score_adj")


@case("cwd-needs-privilege", spec="runc: chdir to cwd before dropping privileges where that works")
def t_cwd_priv(c):
    cfg = c.config(["/probe", "cwd", "end"])
    cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
    cfg["process"]["cwd"] = "/root"
    rep = c.probe(cfg, prepare=lambda b: os.chmod(os.path.join(b, "rootfs", "root"), 0o700))
    eq(rep.get("cwd"), M(c, "/root", "/"), "cwd")


@case("exec-dac-override", features=["linux.capabilities"],
      spec="runc: an executable the user can't execute but CAP_DAC_OVERRIDE can is left to execve")
def t_dac_override(c):
    cfg = c.config(["/probe2", "id", "end"])
    cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
    cfg["process"]["capabilities"] = {k: ["CAP_DAC_OVERRIDE"] for k in ("bounding", "effective", "permitted")}

    def prepare(b):
        shutil.copy2(os.path.join(b, "rootfs", "probe"), os.path.join(b, "rootfs", "probe2"))
        os.chmod(os.path.join(b, "rootfs", "probe2"), 0o700)
    rep = c.probe(cfg, prepare=prepare)
    eq(rep.get("uid"), M(c, "1000", "0"), "uid")
