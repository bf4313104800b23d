"""Cases: namespaces (config-linux.md Namespaces), hostname/domainname, namespaced sysctls."""
import os
import subprocess
import time

from ..core import case, check, eq, M, Skip, settings
from ..host import host_ns
from ..context import create_fails
from ..inside import looks_inside


@case("hostname", features=["linux.namespaces.uts"], spec="config.md hostname")
def t_hostname(c):
    cfg = c.config(["/probe", "hostname", "end"])
    cfg["hostname"] = "conf-host"
    rep = c.probe(cfg)
    eq(rep.get("hostname"), M(c, "conf-host", "x"), "hostname")


@case("domainname", features=["linux.namespaces.uts"], spec="config.md domainname")
def t_domainname(c):
    cfg = c.config(["/probe", "domainname", "end"])
    cfg["domainname"] = "conf.example"
    rep = c.probe(cfg)
    eq(rep.get("domainname"), M(c, "conf.example", "x"), "domainname")


def ns_case(kind, nsname):
    @case(f"namespace-{kind}", features=[f"linux.namespaces.{kind}"],
          spec=f"config-linux.md namespaces: {kind} (new namespace; absent means the runtime's)")
    def t(c):
        cfg = c.config(["/probe", "ns", "pid", "end"])
        nss = [n for n in cfg["linux"]["namespaces"] if n["type"] != kind]
        cfg["linux"]["namespaces"] = nss + [{"type": kind}]
        if kind == "network":
            pass
        rep = c.probe(cfg)
        check(rep.get(f"ns.{nsname}", "absent") != "absent", f"/proc/self/ns/{nsname} unreadable")
        if c.mutate:
            eq(rep.get(f"ns.{nsname}"), host_ns(nsname), f"ns.{nsname}")
        check(rep.get(f"ns.{nsname}") != host_ns(nsname), f"{nsname} namespace is the host's")
        if kind == "pid":
            eq(rep.get("pid"), "1", "pid inside a new pid namespace")
        # without it, the runtime's namespace is used
        if kind in ("network", "ipc", "uts", "cgroup"):
            cfg2 = c.config(["/probe", "ns", "end"])
            cfg2["linux"]["namespaces"] = nss
            if kind == "uts":
                cfg2.pop("hostname", None)
            rep2 = c.probe(cfg2)
            eq(rep2.get(f"ns.{nsname}"), host_ns(nsname), f"ns.{nsname} without a {kind} namespace")
    return t


for _k, _n in (("pid", "pid"), ("network", "net"), ("ipc", "ipc"), ("uts", "uts"), ("mount", "mnt"),
               ("cgroup", "cgroup")):
    ns_case(_k, _n)


@case("namespace-user", features=["linux.namespaces.user"],
      spec="config-linux.md user namespace with uidMappings/gidMappings")
def t_userns(c):
    cfg = c.config(["/probe", "id", "ns", "file", "/proc/self/uid_map", "file", "/proc/self/gid_map", "end"])
    cfg["linux"]["namespaces"].append({"type": "user"})
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    cfg["mounts"] = [m for m in cfg["mounts"] if m["destination"] not in ("/sys",)]
    rep = c.probe(cfg)
    check(rep.get("ns.user") != host_ns("user"), "user namespace is the host's")
    eq(rep.get("uid"), "0", "uid inside")
    eq(" ".join(rep.get("file[/proc/self/uid_map]", "").split()), M(c, "0 100000 65536", "0 0 1"), "uid_map")
    eq(" ".join(rep.get("file[/proc/self/gid_map]", "").split()), "0 200000 65536", "gid_map")


def kernel_clocks(timer_list):
    """(monotonic, boottime) in seconds of the kernel itself, from /proc/timer_list as the probe
    prints it ('|' for newlines): `now at N nsecs` is ktime_get(), which no time namespace shifts;
    boottime is that plus the time the kernel was suspended, the `.offset` of cpu 0's clock base 2
    (CLOCK_BOOTTIME). A kernel without high-resolution timers prints no offsets: it is then taken
    as never suspended (a microvm's guest is not; its vCPUs stopping is no suspend to its kernel)."""
    lines = [l.strip() for l in timer_list.split("|")]
    now = [l for l in lines if l.startswith("now at ") and l.endswith(" nsecs")]
    check(now, f"no 'now at N nsecs' in /proc/timer_list: {timer_list[:200]!r}")
    mono = int(now[0].split()[2]) / 1e9
    check("clock 2:" in lines, f"no clock base 2 (boottime) in /proc/timer_list: {timer_list[:300]!r}")
    base = lines[lines.index("clock 2:"):]
    end = next((i for i, l in enumerate(base) if l.startswith(("clock 3:", "active timers:"))), len(base))
    off = [l for l in base[:end] if l.startswith(".offset:")]
    return mono, mono + (int(off[0].split()[1]) / 1e9 if off else 0)


@case("namespace-time", features=["linux.namespaces.time"],
      spec="config-linux.md time namespace with timeOffsets")
def t_timens(c):
    if not os.path.exists("/proc/self/ns/time"):
        raise Skip("kernel has no time namespaces")
    inside = looks_inside(c)
    # The offsets are relative to the clocks of the runtime's namespace: the caller's, or where the
    # container runs in a VM (whose kernel booted later) the guest kernel's own, unshifted clock,
    # which the probe reads from /proc/timer_list just before its clocks.
    cfg = c.config(["/probe", "ns"] + (["file", "/proc/timer_list"] if inside else []) + ["clock", "end"])
    cfg["linux"]["namespaces"].append({"type": "time"})
    cfg["linux"]["timeOffsets"] = {"monotonic": {"secs": 86400, "nanosecs": 0},
                                   "boottime": {"secs": 2 * 86400, "nanosecs": 0}}
    before = time.clock_gettime(time.CLOCK_MONOTONIC)
    rep = c.probe(cfg)
    check(rep.get("ns.time") != host_ns("time"), "time namespace is the host's")
    ref = (kernel_clocks(rep.get("file[/proc/timer_list]", "")) if inside
           else (before, time.clock_gettime(time.CLOCK_BOOTTIME)))
    mono = int(rep.get("clock.monotonic", "0")) - ref[0]
    boot = int(rep.get("clock.boottime", "0")) - ref[1]
    check(abs(mono - M(c, 86400, 0)) < 30, f"monotonic offset {mono:.0f}s, want 86400")
    check(abs(boot - 2 * 86400) < 30, f"boottime offset {boot:.0f}s, want 172800")


@case("namespace-join-path", features=["linux.namespaces.network", "linux.namespaces.ipc", "linux.namespaces.uts"],
      spec="config-linux.md namespaces path: join an existing namespace")
def t_join(c):
    cid, _, _ = c.create(c.config(["/probe", "sleep", "60"]))
    pid = c.rt.state(cid)["pid"]
    cfg = c.config(["/probe", "ns", "hostname", "end"])
    cfg["linux"]["namespaces"] = [{"type": "pid"}, {"type": "mount"}] + [
        {"type": t, "path": f"/proc/{pid}/ns/{n}"} for t, n in (("network", "net"), ("ipc", "ipc"), ("uts", "uts"))]
    cfg.pop("hostname", None)
    rep = c.probe(cfg)
    for n in ("net", "ipc", "uts"):
        want = os.readlink(f"/proc/{pid}/ns/{n}")
        eq(rep.get(f"ns.{n}"), M(c, want, host_ns(n)), f"ns.{n}")
    eq(rep.get("hostname"), "conformance", "hostname of the joined uts namespace")


@case("sysctl", spec="config-linux.md sysctl (namespaced keys)")
def t_sysctl(c):
    cfg = c.config(["/probe", "sysctl", "net.ipv4.ip_forward", "sysctl", "kernel.shmmni", "end"])
    cfg["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.shmmni": "1234"}
    rep = c.probe(cfg)
    eq(rep.get("sysctl[net.ipv4.ip_forward]"), M(c, "1", "0"), "net.ipv4.ip_forward")
    eq(rep.get("sysctl[kernel.shmmni]"), "1234", "kernel.shmmni")


@case("sysctl-uts-conflict", features=["linux.namespaces.uts"],
      spec="runc: the kernel.hostname sysctl conflicts with hostname and is refused (kernel.domainname is set)")
def t_sysctl_uts(c):
    cfg = c.config(["/probe", "end"])
    cfg["linux"]["sysctl"] = {"kernel.hostname": "x"}
    err = create_fails(c, cfg)
    check("kernel.hostname" in err, f"error does not name kernel.hostname: {err.strip()[:200]!r}")
    cfg = c.config(["/probe", "domainname", "end"])
    cfg["linux"]["sysctl"] = {"kernel.domainname": "sysctl-domain"}
    eq(c.probe(cfg).get("domainname"), "sysctl-domain", "domainname from the sysctl")


@case("namespace-user-bind-host-only", features=["linux.namespaces.user", "mountOptions.bind", "mountOptions.rbind"],
      spec="runc >= 1.2, crun: bind sources are opened on the host before the user namespace is entered, "
           "so a source only the host's root can reach is mounted; rbind/bind and ro as usual")
def t_userns_bind_host_only(c):
    if settings.rootless or os.geteuid() != 0:
        raise Skip("needs root: the sources sit in a directory only the host's root can enter")
    private = os.path.join(c.dir, "host-only")
    src = os.path.join(private, "src")
    os.makedirs(os.path.join(src, "sub"))
    os.chmod(private, 0o700)  # root-owned: the container's root (host uid 100000) can't enter it
    os.chmod(src, 0o777)
    with open(os.path.join(src, "hello"), "w") as f:
        f.write("from host")
    with open(os.path.join(private, "single"), "w") as f:
        f.write("one file")
    sub = os.path.join(src, "sub")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", sub], check=True)
    try:
        with open(os.path.join(sub, "inner"), "w") as f:
            f.write("submount")
        cfg = c.config(["/probe", "file", "/mnt/r/hello", "file", "/mnt/r/sub/inner", "writable", "/mnt/r",
                        "mount", "/mnt/r", "file", "/mnt/b/hello", "file", "/mnt/b/sub/inner", "writable", "/mnt/b",
                        "file", "/mnt/f", "end"])
        cfg["linux"]["namespaces"].append({"type": "user"})
        cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        cfg["mounts"] = [m for m in cfg["mounts"] if m["destination"] not in ("/sys",)]
        cfg["mounts"] += [
            {"destination": "/mnt/r", "type": "bind", "source": src, "options": ["rbind", "ro"]},
            {"destination": "/mnt/b", "type": "bind", "source": src, "options": ["bind"]},
            {"destination": "/mnt/f", "type": "bind", "source": os.path.join(private, "single"), "options": ["bind", "ro"]},
        ]
        def prepare(b):
            # The rootfs is the host root's, which the container's root can't write: the
            # mountpoints exist already (no runtime has to create them).
            for d in ("r", "b"):
                os.makedirs(os.path.join(b, "rootfs", "mnt", d), exist_ok=True)
            open(os.path.join(b, "rootfs", "mnt", "f"), "w").close()
        rep = c.probe(cfg, prepare=prepare)
    finally:
        subprocess.run(["umount", "-l", sub])
    eq(rep.get("file[/mnt/r/hello]"), M(c, "from host", "error:13"), "file in the rbind of a host-only source")
    eq(rep.get("file[/mnt/r/sub/inner]"), "submount", "submount under an rbind")
    eq(rep.get("writable[/mnt/r]"), "0", "ro rbind writable")
    check("ro" in rep.get("mount[/mnt/r].options", "").split(","), "ro rbind not ro in mountinfo")
    eq(rep.get("file[/mnt/b/hello]"), "from host", "file in the bind of a host-only source")
    eq(rep.get("file[/mnt/b/sub/inner]"), "error:2", "submount under a (non-recursive) bind")
    eq(rep.get("writable[/mnt/b]"), "1", "rw bind writable")
    eq(rep.get("file[/mnt/f]"), "one file", "file bind from a host-only directory")
