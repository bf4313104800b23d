"""Cases: mounts and the root filesystem (config.md Mounts, Root): options, propagation,
masked and read-only paths."""
import os
import shutil
import subprocess

from ..core import case, check, eq, M, Skip
from ..host import controller_mounted
from ..context import create_fails
from ..inside import exec_probe, looks_inside


@case("mount-tmpfs", features=["mountOptions.nosuid", "mountOptions.noexec", "mountOptions.nodev"],
      spec="config.md mounts: tmpfs with options and data")
def t_tmpfs(c):
    cfg = c.config(["/probe", "mount", "/mnt/t", "stat", "/mnt/t", "end"])
    cfg["mounts"].append({"destination": "/mnt/t", "type": "tmpfs", "source": "tmpfs",
                          "options": ["nosuid", "noexec", "nodev", "size=1m", "mode=0710"]})
    rep = c.probe(cfg)
    eq(rep.get("mount[/mnt/t].fstype"), "tmpfs", "fstype")
    opts = rep.get("mount[/mnt/t].options", "").split(",")
    for o in M(c, ["nosuid", "noexec", "nodev"], ["ro"]):
        check(o in opts, f"mount option {o} missing: {opts}")
    sopts = rep.get("mount[/mnt/t].superoptions", "").split(",")
    check("size=1024k" in sopts, f"size=1m not applied: {sopts}")
    eq(rep.get("stat[/mnt/t].mode"), "0710", "mode of the tmpfs root")


@case("mount-bind-ro", features=["mountOptions.bind", "mountOptions.rbind", "mountOptions.ro"],
      spec="config.md mounts: bind mounts, read-only")
def t_bind(c):
    src = os.path.join(c.dir, "bindsrc")
    os.makedirs(src)
    open(os.path.join(src, "hello"), "w").write("hi")
    cfg = c.config(["/probe", "mount", "/mnt/ro", "readable", "/mnt/ro/hello", "writable", "/mnt/ro",
                    "mount", "/mnt/rw", "writable", "/mnt/rw", "end"])
    cfg["mounts"] += [
        {"destination": "/mnt/ro", "type": "bind", "source": src, "options": ["bind", "ro"]},
        {"destination": "/mnt/rw", "type": "none", "source": src, "options": ["rbind", "rw"]},
    ]
    rep = c.probe(cfg)
    eq(rep.get("readable[/mnt/ro/hello]"), "1", "file in the bind mount readable")
    eq(rep.get("writable[/mnt/ro]"), M(c, "0", "1"), "read-only bind writable")
    check("ro" in rep.get("mount[/mnt/ro].options", "").split(","), "ro bind mount not ro in mountinfo")
    eq(rep.get("writable[/mnt/rw]"), "1", "read-write bind writable")


@case("mount-propagation", features=["mountOptions.shared", "mountOptions.rshared", "mountOptions.private",
                                      "mountOptions.rprivate", "mountOptions.unbindable",
                                      "mountOptions.runbindable", "mountOptions.slave", "mountOptions.rslave"],
      spec="config.md mounts: propagation options; config-linux.md rootfsPropagation")
def t_propagation(c):
    src = os.path.join(c.dir, "propsrc")
    os.makedirs(src)
    cfg = c.config(["/probe"] + sum([["mount", f"/mnt/{p}"] for p in
                                     ("shared", "rshared", "private", "rprivate", "unbindable", "runbindable",
                                      "slave", "rslave")], []) + ["end"])
    for p in ("shared", "rshared", "private", "rprivate", "unbindable", "runbindable", "slave", "rslave"):
        cfg["mounts"].append({"destination": f"/mnt/{p}", "type": "bind", "source": src, "options": ["rbind", p]})
    cfg["linux"]["rootfsPropagation"] = "rprivate"
    rep = c.probe(cfg)
    for p, tag in (("shared", "shared:"), ("rshared", "shared:"), ("unbindable", "unbindable"),
                   ("runbindable", "unbindable")):
        prop = rep.get(f"mount[/mnt/{p}].propagation", "")
        check(M(c, tag, "nope") in prop, f"/mnt/{p}: propagation {prop!r}, want {tag}")
    for p in ("private", "rprivate", "slave", "rslave"):
        prop = rep.get(f"mount[/mnt/{p}].propagation", "")
        check("shared:" not in prop and "unbindable" not in prop, f"/mnt/{p}: propagation {prop!r}")


FLAG_OPTS = {  # option -> what mountinfo's per-mount options must then contain
    "ro": "ro", "rw": "rw", "nosuid": "nosuid", "nodev": "nodev", "noexec": "noexec", "noatime": "noatime",
    "nodiratime": "nodiratime", "relatime": "relatime", "strictatime": None, "sync": None, "dirsync": None,
    "nosymfollow": "nosymfollow", "suid": None, "dev": None, "exec": None, "async": None, "atime": None,
    "diratime": None, "norelatime": None, "nostrictatime": None, "lazytime": None, "nolazytime": None,
    "iversion": None, "noiversion": None, "silent": None, "loud": None, "mand": None, "nomand": None,
    "symfollow": None,
}


@case("mount-options", features=[f"mountOptions.{o}" for o in FLAG_OPTS],
      spec="config.md mounts options (mount(8) flags): each accepted; observable ones checked in mountinfo")
def t_mount_opts(c):
    names = sorted(FLAG_OPTS)
    cfg = c.config(["/probe"] + sum([["mount", f"/mnt/o/{o}"] for o in names], []) + ["end"])
    for o in names:
        cfg["mounts"].append({"destination": f"/mnt/o/{o}", "type": "tmpfs", "source": "tmpfs",
                              "options": [o, "size=64k"]})
    rep = c.probe(cfg)
    bad = []
    for o in names:
        if rep.get(f"mount[/mnt/o/{o}]") != "present":
            bad.append(f"{o}: not mounted")
            continue
        want = FLAG_OPTS[o]
        if c.mutate and o == "ro":
            want = "nosuid"
        if want and want not in rep.get(f"mount[/mnt/o/{o}].options", "").split(","):
            bad.append(f"{o}: options {rep.get(f'mount[/mnt/o/{o}].options')}")
    check(not bad, "; ".join(bad))


@case("mount-option-defaults", features=["mountOptions.defaults"],
      spec="config.md mounts options: mount(8)'s \"defaults\" (a no-op, never filesystem data)")
def t_defaults(c):
    cfg = c.config(["/probe", "mount", "/mnt/d", "end"])
    cfg["mounts"].append({"destination": "/mnt/d", "type": "tmpfs", "source": "tmpfs", "options": ["defaults"]})
    rep = c.probe(cfg)
    eq(rep.get("mount[/mnt/d].fstype"), M(c, "tmpfs", "x"), "fstype")
    check("rw" in rep.get("mount[/mnt/d].options", "").split(","), "defaults mount not rw")


@case("mount-remount", features=["mountOptions.remount"], spec="config.md mounts: remount an existing mount")
def t_remount(c):
    cfg = c.config(["/probe", "mount", "/mnt/r", "end"])
    cfg["mounts"].append({"destination": "/mnt/r", "type": "tmpfs", "source": "tmpfs", "options": ["nodev"]})
    cfg["mounts"].append({"destination": "/mnt/r", "type": "tmpfs", "source": "tmpfs",
                          "options": ["remount", "ro", "nodev", "nosuid"]})
    rep = c.probe(cfg)
    opts = rep.get("mount[/mnt/r].options", "").split(",")
    check("ro" in opts and M(c, "nosuid", "x") in opts, f"/mnt/r options {opts}")


@case("mount-cgroup", spec="config-linux.md / runc default spec: a cgroup mount shows the container's cgroups")
def t_mount_cgroup(c):
    cfg = c.config(["/probe", "mount", "/sys/fs/cgroup", "cgroup", "end"])
    cfg["mounts"].append({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                          "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]})
    cfg["linux"]["namespaces"].append({"type": "cgroup"})
    rep = c.probe(cfg)
    check(rep.get("mount[/sys/fs/cgroup]") == "present", "nothing mounted at /sys/fs/cgroup")
    cg = rep.get("file[/proc/self/cgroup]", "").split("|")
    want_mem = [l for l in cg if ":memory:" in l]
    if controller_mounted("memory"):
        check(want_mem and want_mem[0].endswith(":/"), f"memory cgroup inside a cgroup namespace: {want_mem}")
        cfg2 = c.config(["/probe", "mount", "/sys/fs/cgroup/memory", "end"])
        cfg2["mounts"] = cfg["mounts"]
        rep2 = c.probe(cfg2)
        eq(rep2.get("mount[/sys/fs/cgroup/memory].fstype"), M(c, "cgroup", "x"), "/sys/fs/cgroup/memory fstype")


@case("mount-symlink-escape", spec="config.md mounts destination: inside the container's root, symlinks resolved within it")
def t_symlink_escape(c):
    target = os.path.join(c.dir, "host-target")
    os.makedirs(target)

    def prepare(b):
        os.symlink(target, os.path.join(b, "rootfs", "evil"))
        os.symlink("../../../../../../../../" + target.lstrip("/"), os.path.join(b, "rootfs", "evil2"))
    cfg = c.config(["/probe", "end"])
    cfg["mounts"].append({"destination": "/evil", "type": "tmpfs", "source": "tmpfs", "options": ["size=64k"]})
    cfg["mounts"].append({"destination": "/evil2", "type": "tmpfs", "source": "tmpfs", "options": ["size=64k"]})
    if looks_inside(c):
        cfg["process"]["args"] = ["/probe", "sleep", "60"]
    cid, b, out = c.create(cfg, prepare=prepare)
    with open("/proc/self/mountinfo") as f:
        leaked = [l for l in f if f" {M(c, target, '/')} " in l]
    check(not leaked, f"a mount landed on the host at {target}")
    if looks_inside(c):
        # The container's init's mount table, from inside (the state pid is the VMM).
        c.rt.ok("start", cid)
        lines = exec_probe(c, cid, "file", "/proc/1/mountinfo").get("file[/proc/1/mountinfo]", "").split("|")
    else:
        try:
            with open(f"/proc/{c.rt.state(cid)['pid']}/mountinfo") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            lines = []
    inside = [l for l in lines if len(l.split()) > 4 and target in l.split()[4]]
    check(inside, f"the tmpfs is not at {target} inside the container's root")


@case("root-readonly", spec="config.md root.readonly")
def t_root_ro(c):
    cfg = c.config(["/probe", "writable", "/", "writable", "/etc/passwd", "writable", "/dev/shm", "end"])
    cfg["root"]["readonly"] = True
    rep = c.probe(cfg)
    eq(rep.get("writable[/]"), M(c, "0", "1"), "/ writable")
    eq(rep.get("writable[/etc/passwd]"), "0", "/etc/passwd writable")
    eq(rep.get("writable[/dev/shm]"), "1", "/dev/shm (own mount) writable")


@case("masked-paths", spec="config-linux.md maskedPaths")
def t_masked(c):
    # /proc/acpi (in runc's default maskedPaths) where the container's kernel is the host's; a
    # microvm's guest kernel may have no ACPI, and /proc/driver is made by every kernel's procfs.
    f, d = "/proc/timer_list", "/proc/driver" if looks_inside(c) else "/proc/acpi"
    for p in (f, d):
        if not looks_inside(c) and not os.path.exists(p):
            raise Skip(f"host has no {p}")
    cfg = c.config(["/probe", "stat", f, "file", f, "mount", d, "end"])
    cfg["linux"]["maskedPaths"] = [f, d, "/proc/does-not-exist"]
    rep = c.probe(cfg)
    eq(rep.get(f"stat[{f}].rdev"), M(c, "1:3", "0:0"), f"{f} masked with /dev/null")
    eq(rep.get(f"file[{f}]"), "", f"content of masked {f}")
    eq(rep.get(f"mount[{d}].fstype"), "tmpfs", f"{d} masked with tmpfs")
    check("ro" in rep.get(f"mount[{d}].options", "").split(","), "masked dir not read-only")


@case("readonly-paths", spec="config-linux.md readonlyPaths")
def t_ropaths(c):
    cfg = c.config(["/probe", "mount", "/proc/sys", "writable", "/proc/sys/kernel/hostname",
                    "mount", "/proc/keys", "end"])
    cfg["linux"]["readonlyPaths"] = ["/proc/sys", "/proc/keys", "/proc/does-not-exist"]
    rep = c.probe(cfg)
    check("ro" in rep.get("mount[/proc/sys].options", "").split(","), f"/proc/sys not ro: {rep.get('mount[/proc/sys].options')}")
    check("ro" in rep.get("mount[/proc/keys].options", "").split(","), "/proc/keys not ro")
    eq(rep.get("writable[/proc/sys/kernel/hostname]"), M(c, "0", "1"), "/proc/sys/kernel/hostname writable")


@case("rootfs-proc-sys-symlink", spec="runc: proc and sysfs must be mounted on an ordinary directory, never through a symlink")
def t_proc_symlink(c):
    for d, what in (("proc", "/proc"), ("sys", "/sys")):
        def prepare(b, d=d):
            shutil.rmtree(os.path.join(b, "rootfs", d), ignore_errors=True)
            os.symlink("/tmp", os.path.join(b, "rootfs", d))
        err = create_fails(c, c.config(["/probe", "end"]), prepare)
        check("ordinary directory" in err, f"{what} on a symlink: error does not say why: {err.strip()[:200]!r}")


@case("mount-rro", features=["mountOptions.rro"], spec="runc: rro makes a bind mount and its submounts read-only")
def t_rro(c):
    src = os.path.join(c.dir, "rro-src")
    os.makedirs(os.path.join(src, "sub"))
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", os.path.join(src, "sub")], check=True)
    try:
        cfg = c.config(["/probe", "writable", "/mnt", "writable", "/mnt/sub", "end"])
        cfg["mounts"].append({"destination": "/mnt", "type": "bind", "source": src, "options": ["rbind", "rro"]})
        rep = c.probe(cfg)
    finally:
        subprocess.run(["umount", "-l", os.path.join(src, "sub")])
    eq(rep.get("writable[/mnt]"), "0", "/mnt writable")
    eq(rep.get("writable[/mnt/sub]"), M(c, "0", "1"), "/mnt/sub (a submount) writable")


@case("mount-tmpfs-mode-copyup", spec="runc: a tmpfs without mode= has its mountpoint's mode; tmpcopyup copies the directory")
def t_tmpfs_mode(c):
    cfg = c.config(["/probe", "stat", "/tmp", "stat", "/etc/passwd", "end"])
    cfg["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]})
    cfg["mounts"].append({"destination": "/etc", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup"]})
    rep = c.probe(cfg, prepare=lambda b: os.chmod(os.path.join(b, "rootfs", "tmp"), 0o1777))
    eq(rep.get("stat[/tmp].mode"), M(c, "1777", "0755"), "/tmp tmpfs mode")
    eq(rep.get("stat[/etc/passwd].type"), "file", "/etc/passwd copied up")


@case("mount-dev-readonly", spec="runc: a read-only /dev still gets /dev/pts, devices and symlinks")
def t_dev_ro(c):
    cfg = c.config(["/probe", "writable", "/dev", "writable", "/dev/shm", "stat", "/dev/null", "end"])
    cfg["mounts"][1]["options"].append("ro")
    rep = c.probe(cfg)
    eq(rep.get("writable[/dev]"), M(c, "0", "1"), "/dev writable")
    eq(rep.get("writable[/dev/shm]"), "1", "/dev/shm writable")
    eq(rep.get("stat[/dev/null].rdev"), "1:3", "/dev/null")
