"""Cases: cgroups (config-linux.md Control groups): cgroupsPath, resources, the freezer, and
the verbs that read the cgroup (kill --all, update, events, ps)."""
import json
import os
import subprocess
import time

from ..core import case, check, eq, Fail, M, Skip, settings, until
from ..host import cg_version, controller_mounted, host_cgroup_dir, remove_cgroups, unified_host
from ..context import Ctx, create_fails, parse_report
from ..inside import InsideCgroup, cgroup_lines, exec_probe, looks_inside, own_cgroup_view


@case("cgroups-path", features=["linux.cgroup.v1"], spec="config-linux.md cgroupsPath (absolute) on every hierarchy; removed by delete")
def t_cgpath(c):
    v = need("memory")
    cfg = c.config(["/probe", "sleep", "60"])
    path = f"/oci-conformance-{os.getpid()}-{Ctx.counter}"
    cfg["linux"]["cgroupsPath"] = path
    c.cgroup_names.append(path.lstrip("/"))
    cid, _, _ = c.create(cfg)
    if looks_inside(c):
        # The container's init, from inside (its cgroups are the guest's; nothing on the host to
        # see after delete).
        c.rt.ok("start", cid)
        lines = cgroup_lines(exec_probe(c, cid, "file", "/proc/1/cgroup").get("file[/proc/1/cgroup]", ""))
        for ctrl in ("memory", "pids", "cpu"):
            own = [p for ctrls, p in lines if ctrl in ctrls.split(",")] or [p for ctrls, p in lines if ctrls == ""]
            check(own and own[0].endswith(M(c, path, "/x")), f"{ctrl} cgroup of the container (inside): {own}")
        return
    pid = c.rt.state(cid)["pid"]
    for ctrl in ("memory", "pids", "cpu"):
        if cg_version(ctrl):
            d = host_cgroup_dir(pid, ctrl if v == 1 else "")
            check(d is not None and d.endswith(M(c, path, "/x")), f"{ctrl} cgroup of the container: {d}")
    d = host_cgroup_dir(pid, "memory" if v == 1 else "")
    c.rt.ok("delete", "--force", cid)
    time.sleep(0.1)
    check(not os.path.exists(d), f"{d} left behind after delete")


@case("cgroups-v2-path", features=["linux.cgroup.v2"], spec="config-linux.md cgroupsPath on the cgroup2 hierarchy")
def t_cgpath2(c):
    if not controller_mounted(""):
        raise Skip("no cgroup2 hierarchy mounted")
    cfg = c.config(["/probe", "sleep", "60"])
    path = f"/oci-conformance-{os.getpid()}-{Ctx.counter}"
    cfg["linux"]["cgroupsPath"] = path
    c.cgroup_names.append(path.lstrip("/"))
    cid, _, _ = c.create(cfg)
    if looks_inside(c):
        c.rt.ok("start", cid)
        text = exec_probe(c, cid, "file", "/proc/1/cgroup").get("file[/proc/1/cgroup]", "")
    else:
        text = open(f"/proc/{c.rt.state(cid)['pid']}/cgroup").read()
    line = [l for l in text.replace("|", "\n").splitlines() if l.startswith("0::")]
    check(line and line[0].endswith(M(c, path, "/x")), f"cgroup2 path of the container: {line}")


def need(ctrl):
    v = cg_version(ctrl)
    if v is None:
        raise Skip(f"this host has no {ctrl} controller")
    return v


def cg_dir(pid, ctrl, version):
    """The container's own cgroup directory; never the caller's (a runtime whose state pid is not in
    the container's cgroup, or that made none, must not send a case to the caller's cgroup)."""
    c = ctrl if version == 1 else ""
    d = host_cgroup_dir(pid, c)
    check(d and os.path.isdir(d), f"container is in no {ctrl} cgroup ({d})")
    check(os.path.normpath(d) != os.path.normpath(host_cgroup_dir(os.getpid(), c) or "/"),
          f"the container's pid {pid} is in the caller's own {ctrl} cgroup {d}")
    return d


def container_cgroup(c, cid, pid, ctrl, version):
    """The container's cgroup for `ctrl` -> (directory, cgroup version): on the host through the
    state pid, or from inside the container where the state pid is not its process."""
    if looks_inside(c):
        d = InsideCgroup(c, cid, ctrl)
        return d, d.version
    return cg_dir(pid, ctrl, version), version


def cg_exists(d, name):
    if isinstance(d, InsideCgroup):
        return d.exists(name)
    return os.path.exists(os.path.join(d, name))


def cg_read(d, name):
    if isinstance(d, InsideCgroup):
        return d.read(name)
    try:
        with open(os.path.join(d, name)) as f:
            return f.read().strip()
    except OSError as e:
        raise Fail(f"read {d}/{name}: {e}")


def cg_container(c, resources, args=("/probe", "sleep", "60"), start=False, edit=None, inside=True):
    """A container with `resources` in the runtime's default cgroup placement -> (id, pid). Where
    the case will look from inside (container_cgroup), and `inside` allows it, the container is
    started and sees its own cgroup at /sys/fs/cgroup."""
    cfg = c.config(list(args))
    cfg["linux"]["resources"] = resources
    if edit:
        edit(cfg)
    look = inside and looks_inside(c)
    if look:
        own_cgroup_view(cfg)
    cid, _, out = c.create(cfg)
    if start or look:
        c.rt.ok("start", cid)
    return cid, c.rt.state(cid)["pid"], out


def cgroup_value_case(name, ctrl, resources, files, spec, extra_features=()):
    """files: {version: [(file, expected)]}; skipped only where the host lacks the controller."""
    @case(name, features=["linux.resources." + ctrl] + list(extra_features), spec=spec)
    def t(c):
        v = need(ctrl)
        cid, pid, _ = cg_container(c, resources)
        d, v = container_cgroup(c, cid, pid, ctrl, v)
        want = files.get(v)
        if callable(want):
            want = want()
        for fname, w in want:
            eq(cg_read(d, fname), M(c, w, "x"), f"{d}/{fname}")
    return t


cgroup_value_case("cgroup-memory", "memory", {"memory": {"limit": 64 << 20}},
                  {1: [("memory.limit_in_bytes", str(64 << 20))], 2: [("memory.max", str(64 << 20))]},
                  "config-linux.md resources.memory.limit")


cgroup_value_case("cgroup-pids", "pids", {"pids": {"limit": 77}}, {1: [("pids.max", "77")], 2: [("pids.max", "77")]},
                  "config-linux.md resources.pids.limit")


# runc's shares -> weight conversion: 1 + ((shares - 2) * 9999) / 262142
cgroup_value_case("cgroup-cpu", "cpu", {"cpu": {"shares": 512, "quota": 50000, "period": 100000}},
                  {1: [("cpu.shares", "512"), ("cpu.cfs_quota_us", "50000"), ("cpu.cfs_period_us", "100000")],
                   2: [("cpu.max", "50000 100000"), ("cpu.weight", str(1 + ((512 - 2) * 9999) // 262142))]},
                  "config-linux.md resources.cpu shares/quota/period (v2: cpu.max, cpu.weight)")


cgroup_value_case("cgroup-cpuset", "cpuset", {"cpu": {"cpus": "0", "mems": "0"}},
                  {1: [("cpuset.cpus", "0"), ("cpuset.mems", "0")], 2: [("cpuset.cpus", "0"), ("cpuset.mems", "0")]},
                  "config-linux.md resources.cpu cpus/mems")


@case("cgroup-memory-swap", features=["linux.resources.memory"],
      spec="config-linux.md resources.memory.swap (v1 memsw = limit + swap; v2 swap.max = swap - limit)")
def t_cg_swap(c):
    v = need("memory")
    cid, pid, _ = cg_container(c, {"memory": {"limit": 64 << 20, "swap": 128 << 20}})
    d, v = container_cgroup(c, cid, pid, "memory", v)
    f = "memory.memsw.limit_in_bytes" if v == 1 else "memory.swap.max"
    if not cg_exists(d, f):
        raise Skip(f"no swap accounting on this host ({f})")
    eq(cg_read(d, f), M(c, str(128 << 20) if v == 1 else str(64 << 20), "x"), f"{d}/{f}")


@case("cgroup-oom", features=["linux.resources.memory"],
      spec="config-linux.md resources.memory.limit: exceeding it OOM-kills the container")
def t_cg_oom(c):
    v = need("memory")
    # (Read on the host even under a microvm runtime: the counter is read after the container
    # stopped, and its VM with it.)
    cid, pid, out = cg_container(c, {"memory": {"limit": 32 << 20, "swap": 32 << 20}},
                                 args=("/probe", "alloc", "256", "sleep", "60", "end"), inside=False)
    d = cg_dir(pid, "memory", v)
    c.rt.ok("start", cid)
    st = c.wait_stopped(cid, timeout=20)
    text = c.read(out)
    check(M(c, "alloc[256]=1" not in text, "alloc[256]=1" in text), f"the probe allocated 256 MiB under a 32 MiB limit: {text[-100:]!r}")
    if v == 2:
        kills = int(dict(l.split() for l in cg_read(d, "memory.events").splitlines()).get("oom_kill", "0"))
    else:
        kills = int(dict(l.split() for l in cg_read(d, "memory.oom_control").splitlines()).get("oom_kill", "0"))
    check(kills >= 1, f"oom_kill count {kills} after the probe allocated 256 MiB under a 32 MiB limit")
    eq(st["status"], M(c, "stopped", "running"), "status after the OOM kill")


@case("cgroup-hugetlb", features=["linux.resources.hugepageLimits"], spec="config-linux.md resources.hugepageLimits")
def t_cg_hugetlb(c):
    v = need("hugetlb")
    # (A microvm runtime's huge pages are its guest kernel's: the file below is then read inside.)
    if not looks_inside(c) and not os.path.isdir("/sys/kernel/mm/hugepages/hugepages-2048kB"):
        raise Skip("no 2 MB huge pages on this host")
    cid, pid, _ = cg_container(c, {"hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 21}]})
    d, v = container_cgroup(c, cid, pid, "hugetlb", v)
    f = "hugetlb.2MB.limit_in_bytes" if v == 1 else "hugetlb.2MB.max"
    eq(cg_read(d, f), M(c, str(4 << 21), "x"), f"{d}/{f}")


SKIP_DISKS = ("loop", "ram", "zram", "dm-", "sr")


def first_disk():
    """major:minor of a whole disk (io throttling needs one), or None."""
    for name in sorted(os.listdir("/sys/block")):
        if name.startswith(SKIP_DISKS):
            continue
        try:
            return open(f"/sys/block/{name}/dev").read().strip()
        except OSError:
            continue
    return None


def first_disk_inside(c):
    """major:minor of the first whole disk the container's kernel has (a microvm runtime's guest
    has its own disks), from /proc/partitions (each disk is listed before its partitions)."""
    rep = c.probe(c.config(["/probe", "file", "/proc/partitions", "end"]))
    for line in rep.get("file[/proc/partitions]", "").split("|"):
        f = line.split()
        if len(f) == 4 and f[0].isdigit() and not f[3].startswith(SKIP_DISKS):
            return f"{f[0]}:{f[1]}"
    return None


@case("cgroup-io", features=["linux.resources.blockIO"],
      spec="config-linux.md resources.blockIO throttleReadBpsDevice (v2: io.max rbps)")
def t_cg_io(c):
    v = need("blkio" if controller_mounted("blkio") else "io")
    dev = first_disk_inside(c) if looks_inside(c) else first_disk()
    if not dev:
        raise Skip("no block device on this host")
    major, minor = (int(x) for x in dev.split(":"))
    cid, pid, _ = cg_container(c, {"blockIO": {"throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 1048576}]}})
    d, v = container_cgroup(c, cid, pid, "blkio" if v == 1 else "io", v)
    if v == 1:
        eq(cg_read(d, "blkio.throttle.read_bps_device"), M(c, f"{dev} 1048576", "x"), f"{d}/blkio.throttle.read_bps_device")
    else:
        line = [l for l in cg_read(d, "io.max").splitlines() if l.startswith(dev + " ")]
        check(line and "rbps=1048576" in line[0].split() and not c.mutate, f"{d}/io.max for {dev}: {line}")


@case("cgroup-devices", features=["linux.resources.devices"],
      spec="config-linux.md resources.devices: only allowed devices can be opened (v1 devices.*, v2 eBPF)")
def t_cg_devices(c):
    if cg_version("devices") is None and not unified_host():
        raise Skip("no device controller on this host")
    cfg = c.config(["/probe", "touch", "/dev/allowed", "touch", "/dev/denied", "end"])
    # /dev/kmsg opened write-only needs no privilege; 1:12 names no device (ENXIO when allowed).
    cfg["linux"]["devices"] = [{"path": "/dev/allowed", "type": "c", "major": 1, "minor": 11, "fileMode": 0o666},
                               {"path": "/dev/denied", "type": "c", "major": 1, "minor": 12, "fileMode": 0o666}]
    cfg["linux"]["resources"] = {"devices": [{"allow": False, "access": "rwm"},
                                             {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "w"}]}
    rep = c.probe(cfg)
    eq(rep.get("touch[/dev/allowed]"), "0", "open of an allowed device")
    eq(rep.get("touch[/dev/denied]"), M(c, "1", "6"), "errno opening a device no rule allows (EPERM)")


@case("cgroup-freeze", features=["linux.resources.freezer"],
      spec="runc CLI pause/resume: the cgroup freezer (v1 freezer.state, v2 cgroup.freeze)")
def t_cg_freeze(c):
    v = 1 if controller_mounted("freezer") else (2 if unified_host() else None)
    if v is None:
        raise Skip("no freezer on this host")
    # (On the host even under a microvm runtime: its pause stops the VM, so nothing can be exec'd.)
    cid, pid, _ = cg_container(c, {}, start=True, inside=False)
    d = cg_dir(pid, "freezer", v)
    c.rt.ok("pause", cid)
    eq(c.rt.state(cid)["status"], M(c, "paused", "running"), "status after pause")
    if v == 1:
        eq(cg_read(d, "freezer.state"), "FROZEN", f"{d}/freezer.state")
    else:
        eq(cg_read(d, "cgroup.freeze"), "1", f"{d}/cgroup.freeze")
    c.rt.ok("resume", cid)
    eq(c.rt.state(cid)["status"], "running", "status after resume")
    eq(cg_read(d, "freezer.state" if v == 1 else "cgroup.freeze"), "THAWED" if v == 1 else "0", "freezer after resume")


@case("kill-all", spec="runc CLI kill --all: every process in the container's cgroup")
def t_kill_all(c):
    cid, pid, _ = cg_container(c, {}, args=("sh", "-c", "sleep 300 & sleep 300 & wait"), start=True)
    if looks_inside(c):
        # From inside, where an exec'd reader is one of the cgroup's processes itself: the three
        # appear, and kill --all stops the container (its VM goes with it: nothing to read after).
        d, _v = container_cgroup(c, cid, pid, "pids", None)
        deadline = until(5)
        while time.time() < deadline and len(cg_read(d, "cgroup.procs").split()) < 4:
            time.sleep(0.05)
        check(len(cg_read(d, "cgroup.procs").split()) >= 4, "the container's three processes never appeared")
        c.rt.ok("kill", "--all", cid, "KILL")
        eq(c.wait_stopped(cid)["status"], M(c, "stopped", "x"), "status after kill --all KILL")
        return
    d = cg_dir(pid, "pids", 1 if controller_mounted("pids") else 2)
    deadline = time.time() + 5
    while time.time() < deadline and len(cg_read(d, "cgroup.procs").split()) < 3:
        time.sleep(0.05)
    check(len(cg_read(d, "cgroup.procs").split()) >= 3, "the container's three processes never appeared")
    c.rt.ok("kill", "--all", cid, "KILL")
    deadline = time.time() + 5
    while time.time() < deadline and cg_read(d, "cgroup.procs"):
        time.sleep(0.05)
    eq(cg_read(d, "cgroup.procs"), M(c, "", "x"), "processes left in the cgroup after kill --all KILL")


@case("update-resources", features=["linux.resources.memory", "linux.resources.pids"],
      spec="runc CLI update --memory --pids-limit on a running container")
def t_update(c):
    vm, vp = need("memory"), need("pids")
    cid, pid, _ = cg_container(c, {"memory": {"limit": 64 << 20}, "pids": {"limit": 50}}, start=True, inside=False)
    c.rt.ok("update", "--memory", str(128 << 20), "--pids-limit", "99", cid)
    dm, dp = cg_dir(pid, "memory", vm), cg_dir(pid, "pids", vp)
    eq(cg_read(dm, "memory.limit_in_bytes" if vm == 1 else "memory.max"), M(c, str(128 << 20), "x"), "memory limit after update")
    eq(cg_read(dp, "pids.max"), "99", "pids limit after update")


@case("events-stats", spec="runc CLI events --stats: one JSON object of the container's cgroup statistics")
def t_events_stats(c):
    need("pids")
    cid, _pid, _ = cg_container(c, {"memory": {"limit": 64 << 20}} if cg_version("memory") else {}, start=True, inside=False)
    p = c.rt.ok("events", "--stats", cid, timeout=15)
    try:
        ev = json.loads(p.out.strip().splitlines()[0])
    except (ValueError, IndexError):
        raise Fail(f"events --stats printed no JSON: {p.out[:200]!r}")
    eq(ev.get("type"), M(c, "stats", "x"), "type")
    eq(ev.get("id"), cid, "id")
    check((ev.get("data", {}).get("pids", {}).get("current") or 0) >= 1, f"data.pids.current: {str(ev)[:200]}")
    if cg_version("memory"):
        check((ev["data"].get("memory", {}).get("usage", {}).get("usage") or 0) > 0, f"data.memory.usage.usage: {str(ev)[:200]}")


@case("ps", spec="runc CLI ps --format json: the container's processes")
def t_ps(c):
    cid, pid, _ = cg_container(c, {}, start=True, inside=False)
    p = c.rt.ok("ps", "--format", "json", cid)
    try:
        pids = json.loads(p.out)
    except ValueError:
        raise Fail(f"ps --format json: {p.out[:200]!r}")
    if looks_inside(c):
        # The state pid is the VMM; ps lists the container's processes, here its one init, in
        # the pid namespace the runtime runs it from (the guest's).
        check(M(c, len(pids) == 1 and all(isinstance(x, int) and x > 0 for x in pids), not pids),
              f"ps of a container running one process: {pids}")
        return
    check(M(c, pid in pids, pid not in pids), f"container pid {pid} not in {pids}")


@case("cgroup-namespace-view", features=["linux.namespaces.cgroup"],
      spec="config-linux.md cgroup namespace: the container sees its own cgroup as the root, and its limits")
def t_cgns_view(c):
    v = need("memory")
    def edit(cfg):
        cfg["linux"]["namespaces"].append({"type": "cgroup"})
        cfg["mounts"].append({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                              "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]})
    f = "/sys/fs/cgroup/memory.max" if v == 2 else "/sys/fs/cgroup/memory/memory.limit_in_bytes"
    cfg = c.config(["/probe", "cgroup", "file", f, "end"])
    cfg["linux"]["resources"] = {"memory": {"limit": 48 << 20}}
    edit(cfg)
    rep = c.probe(cfg)
    cg = rep.get("file[/proc/self/cgroup]", "")
    lines = [l for l in cg.split("|") if l]
    inside_root = bool(lines) and all(l.endswith(":/") for l in lines)
    check(M(c, inside_root, not inside_root), f"/proc/self/cgroup inside: {cg!r}")
    eq(rep.get(f"file[{f}]", "").rstrip("|"), M(c, str(48 << 20), "x"), f"{f} inside the container")


def hierarchy_roots():
    """controllers -> host mountpoint of every mounted cgroup hierarchy ("" for cgroup2)."""
    roots = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, post = line.split(" - ", 1)
            fstype, _src, sopts = post.split()[:3]
            if fstype == "cgroup2":
                roots.setdefault("", pre.split()[4])
            elif fstype == "cgroup":
                ctrls = ",".join(o for o in sopts.split(",") if o not in ("rw", "ro") and ("=" not in o or o.startswith("name=")))
                roots.setdefault(ctrls, pre.split()[4])
    return roots


def copy_cpuset(parent, child):
    """A new v1 cpuset cgroup takes no process until its cpus and mems are set: the parent's."""
    for knob in ("cpuset.cpus", "cpuset.mems"):
        dst = os.path.join(child, knob)
        src = os.path.join(parent, knob)
        if os.path.exists(src) and os.path.exists(dst) and not open(dst).read().strip():
            with open(src) as f:
                value = f.read()
            with open(dst, "w") as f:
                f.write(value)


def precreated_cgroup(c, which):
    """A cgroupsPath that exists before create, in the hierarchies `which` picks from
    hierarchy_roots(): -> (path, [dirs]). The case removes the directories itself."""
    roots = [r for k, r in hierarchy_roots().items() if which(k)]
    if not roots:
        raise Skip("no such cgroup hierarchy mounted")
    path = f"/oci-conformance-{os.getpid()}-{Ctx.counter}-{c.name}"[:80]
    c.cgroup_names.append(path.lstrip("/"))
    dirs = []
    try:
        for r in roots:
            os.makedirs(r + path)
            dirs.append(r + path)
            copy_cpuset(r, r + path)
    except PermissionError as e:
        remove_cgroups(reversed(dirs))
        raise Skip(f"this user may not create a cgroup there ({e})")
    return path, dirs


@case("cgroups-path-frozen", spec="runc: a pre-existing frozen cgroup as cgroupsPath is refused, not waited on")
def t_cgpath_frozen(c):
    v = 1 if controller_mounted("freezer") else (2 if unified_host() else None)
    if v is None:
        raise Skip("no freezer on this host")
    path, dirs = precreated_cgroup(c, lambda k: "freezer" in k.split(",") if v == 1 else k == "")
    knob, frozen, thawed = ("freezer.state", "FROZEN", "THAWED") if v == 1 else ("cgroup.freeze", "1", "0")
    with open(os.path.join(dirs[0], knob), "w") as f:
        f.write(frozen)
    try:
        cfg = c.config(["/probe", "sleep", "60"])
        cfg["linux"]["cgroupsPath"] = path
        b = c.bundle(cfg)
        p = c.rt.call("create", "--bundle", b, c.new_id(), timeout=10)
        check(M(c, p.returncode != 0, p.returncode == 0), "create in a frozen cgroup succeeded")
        check("frozen" in (p.err + p.out).lower(), f"error does not say the cgroup is frozen: {(p.err + p.out).strip()[:200]!r}")
    finally:
        with open(os.path.join(dirs[0], knob), "w") as f:
            f.write(thawed)
        for cid in c.ids:
            c.rt.call("delete", "--force", cid, timeout=10)
        remove_cgroups(dirs)


@case("cgroups-path-not-empty", spec="runc: a pre-existing cgroupsPath with processes in it: a warning, and the container runs")
def t_cgpath_not_empty(c):
    path, dirs = precreated_cgroup(c, lambda k: True)
    other = subprocess.Popen(["sleep", "60"])
    try:
        for d in dirs:
            with open(os.path.join(d, "cgroup.procs"), "w") as f:
                f.write(str(other.pid))
        cfg = c.config(["/probe", "end"])
        cfg["linux"]["cgroupsPath"] = path
        cid, _b, out = c.create(cfg)
        err = c.read(out + ".err")
        check(M(c, "not empty" in err, "not empty" not in err), f"create's warning: {err.strip()[:200]!r}")
        c.rt.ok("start", cid)
        c.wait_stopped(cid)
        eq(parse_report(c.read(out)).get("end"), "1", "the container ran")
        c.rt.ok("delete", cid)
    finally:
        other.kill()
        other.wait()
        for cid in c.ids:
            c.rt.call("delete", "--force", cid, timeout=10)
        remove_cgroups(dirs)


@case("cgroup-unified-on-v1", spec="runc: linux.resources.unified where the controllers are on cgroup v1 is an invalid configuration")
def t_unified_v1(c):
    if unified_host():
        raise Skip("a unified host: resources.unified applies")
    cfg = c.config(["/probe", "end"])
    cfg["linux"]["resources"] = {"unified": {"pids.max": "10"}}
    err = create_fails(c, cfg)
    check("invalid configuration" in err and "unified" in err, f"error does not say why: {err.strip()[:200]!r}")


@case("cgroup-systemd", features=["linux.cgroup.systemd"],
      spec="runc --systemd-cgroup: cgroupsPath slice:prefix:name is the transient scope <prefix>-<name>.scope "
           "in the slice, made by systemd; delete stops it")
def t_cgroup_systemd(c):
    if settings.rootless or os.geteuid() != 0:
        raise Skip("rootless: the user's manager is cgroup-systemd-user's case")
    if not os.path.isdir("/run/systemd/system"):
        raise Skip("systemd is not the init system here (the VM test host's systemd layout runs this case)")
    systemd_scope(c, "system.slice", [], "/system.slice")


@case("cgroup-systemd-user", features=["linux.cgroup.systemdUser"],
      spec="runc --systemd-cgroup, rootless: the transient scope is made by the calling user's own systemd "
           "(user@UID.service), in the slice under it; delete stops it")
def t_cgroup_systemd_user(c):
    if not settings.rootless or os.geteuid() == 0:
        raise Skip("needs a rootless run (--rootless, not root) under the user's systemd")
    try:
        p = subprocess.run(["systemctl", "--user", "show", "-P", "ControlGroup"], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        p = None
    if p is None or p.returncode != 0 or not p.stdout.strip():
        raise Skip("no systemd user manager for this user (the VM test host's systemd layout runs this case)")
    systemd_scope(c, "user.slice", ["--user"], p.stdout.strip() + "/user.slice")


def systemd_scope(c, slice_, systemctl, parent):
    """The scope for cgroupsPath SLICE:conformance:NAME: made by systemd (`systemctl [--user]`),
    the container's cgroup PARENT/<unit>, gone after delete --force."""
    if not unified_host():
        raise Skip("the case reads the scope on a unified host")
    flag = [] if settings.systemd_cgroup else ["--systemd-cgroup"]
    cfg = c.config(["/probe", "sleep", "60"])
    name = f"c{os.getpid()}-{Ctx.counter}"
    unit = f"conformance-{name}.scope"
    c.cgroup_names.append(unit)
    cfg["linux"]["cgroupsPath"] = f"{slice_}:conformance:{name}"
    b = c.bundle(cfg)
    cid = c.new_id()
    c.rt.ok(*flag, "create", "--bundle", b, cid, timeout=30)
    pid = c.rt.state(cid)["pid"]
    with open(f"/proc/{pid}/cgroup") as f:
        own = [l.split(":", 2)[2] for l in f.read().splitlines() if l.startswith("0::")]
    eq(own[:1], [M(c, f"{parent}/{unit}", parent)], "the container's cgroup")
    p = subprocess.run(["systemctl", *systemctl, "is-active", unit], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, text=True)
    eq(p.stdout.strip(), "active", f"systemctl {' '.join(systemctl)} is-active {unit}".replace("  ", " "))
    c.rt.ok(*flag, "delete", "--force", cid, timeout=30)
    deadline = time.time() + 10
    while os.path.isdir(f"/sys/fs/cgroup{parent}/{unit}") and time.time() < deadline:
        time.sleep(0.1)
    check(not os.path.isdir(f"/sys/fs/cgroup{parent}/{unit}"), f"{unit} is still there after delete")
