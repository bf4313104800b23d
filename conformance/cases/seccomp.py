"""Cases: linux.seccomp (config-linux.md Seccomp)."""
import os

from ..core import case, check, eq, M
from ..context import create_fails


@case("seccomp-errno", features=["linux.seccomp"], spec="config-linux.md seccomp: SCMP_ACT_ERRNO with errnoRet")
def t_seccomp(c):
    cfg = c.config(["/probe", "seccomp", "mkdir", "/tmp/denied", "end"])
    cfg["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    }
    rep = c.probe(cfg)
    eq(rep.get("seccomp"), "2", "Seccomp mode in /proc/self/status")
    eq(rep.get("mkdir[/tmp/denied]"), M(c, "1", "0"), "errno of a denied mkdir")


@case("seccomp-notify-no-listener", features=["linux.seccomp"],
      spec="runc: SCMP_ACT_NOTIFY with an absent listenerPath fails create (failed to connect with seccomp agent)")
def t_notify_no_listener(c):
    cfg = c.config(["/probe", "end"])
    cfg["process"]["noNewPrivileges"] = False
    cfg["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": os.path.join(c.dir, "absent.sock"),
                               "architectures": ["SCMP_ARCH_X86_64"],
                               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]}
    err = create_fails(c, cfg)
    check("seccomp agent" in err, f"error does not name the seccomp agent: {err.strip()[:200]!r}")
    # Trapping the syscall that hands the notify fd over must fail create, never hang it
    # (runc hands it over with write, brig with sendmsg).
    cfg["linux"]["seccomp"]["syscalls"][0]["names"] = ["sendmsg"]
    create_fails(c, cfg)
