"""Facts about this host, read from /proc: processes, namespaces, cgroup hierarchies."""
import os
import platform
import time


def pid_alive(pid):
    """True if pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def own_cgroups():
    """controllers -> the caller's cgroup path (from /proc/self/cgroup; "" is cgroup2)."""
    own = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _i, ctrls, path = line.rstrip("\n").split(":", 2)
            own[ctrls] = path
    return own


def leftover_cgroups(names):
    """Cgroup directories named after `names` wherever a runtime may put them: at a hierarchy's
    root (absolute cgroupsPath), below the caller's own cgroup (v1 rule), or below its parent
    (runc's v2 rule for a relative path)."""
    out = []
    if not names:
        return out
    hier = []
    own = own_cgroups()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, post = line.split(" - ", 1)
            fstype, _src, sopts = post.split()[:3]
            if fstype == "cgroup2":
                hier.append((pre.split()[4], own.get("", "/")))
            elif fstype == "cgroup":
                ctrls = [o for o in sopts.split(",") if o not in ("rw", "ro") and "=" not in o or o.startswith("name=")]
                path = next((p for k, p in own.items() if k and set(k.split(",")) == set(ctrls)), "/")
                hier.append((pre.split()[4], path))
    for mount, mine in hier:
        bases = {mount, mount + mine.rstrip("/"), mount + os.path.dirname(mine.rstrip("/") or "/")}
        for base in bases:
            for n in names:
                d = os.path.join(base, n)
                if os.path.isdir(d) and os.path.exists(os.path.join(d, "cgroup.procs")) and d not in out:
                    out.append(d)
    return out


def host_ns(kind):
    return os.readlink(f"/proc/self/ns/{kind}")


def host_cgroup_dir(pid, controller):
    """The container's cgroup directory for a v1 controller (or "" for v2), from /proc/PID/cgroup."""
    with open(f"/proc/{pid}/cgroup") as f:
        lines = f.read().splitlines()
    mounts = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, post = line.split(" - ", 1)
            fields = pre.split()
            fstype, _src, sopts = post.split()[:3]
            if fstype == "cgroup":
                for o in sopts.split(","):
                    mounts.setdefault(o, fields[4])
            elif fstype == "cgroup2":
                mounts.setdefault("", fields[4])
    for l in lines:
        _hid, ctrls, path = l.split(":", 2)
        if controller in ctrls.split(",") or (controller == "" and ctrls == ""):
            if controller not in mounts:
                return None
            return mounts[controller] + path
    return None


def controller_mounted(controller):
    with open("/proc/self/mountinfo") as f:
        for line in f:
            post = line.split(" - ", 1)[1].split()
            if controller == "" and post[0] == "cgroup2":
                return True
            if post[0] == "cgroup" and controller in post[2].split(","):
                return True
    return False


def unified_host():
    """cgroup2 mounted at /sys/fs/cgroup: a pure cgroup v2 host."""
    top = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, post = line.split(" - ", 1)
            if pre.split()[4] == "/sys/fs/cgroup":
                top = post.split()[0]
    return top == "cgroup2"


def cg_version(ctrl):
    """1 where `ctrl` is a mounted v1 controller, 2 where it is available on a unified host's cgroup2
    (at the caller's parent, where runtimes put containers), else None."""
    if controller_mounted(ctrl):
        return 1
    if unified_host():
        own = own_cgroups().get("", "/")
        for d in (os.path.dirname(own.rstrip("/") or "/"), "/"):
            try:
                return 2 if ctrl in open(f"/sys/fs/cgroup{d.rstrip('/')}/cgroup.controllers").read().split() else None
            except OSError:
                continue
    return None


def machine():
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    v1 = controller_mounted("memory") or controller_mounted("pids")
    v2 = controller_mounted("")
    mode = "hybrid (v1 controllers + cgroup2 at /sys/fs/cgroup/unified)" if v1 and v2 else "v1" if v1 else "v2 (unified)"
    return {"kernel": platform.release(), "cpu": cpu, "ncpu": os.cpu_count(), "cgroup": mode}


def remove_cgroups(dirs, tries=50):
    """rmdir each of `dirs` in order, retrying while it is busy (its last processes exiting)."""
    for d in dirs:
        for _ in range(tries):
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.05)
