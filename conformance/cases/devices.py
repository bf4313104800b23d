"""Cases: device nodes (config-linux.md Devices): the default devices and linux.devices."""
import os

from ..core import case, check, eq, M, Skip


@case("namespace-user-devices", features=["linux.namespaces.user"],
      spec="config-linux.md devices inside a user namespace (mknod is not permitted: the host node is used)")
def t_userns_devices(c):
    if not os.path.exists("/dev/fuse"):
        raise Skip("host has no /dev/fuse")
    cfg = c.config(["/probe", "stat", "/dev/fuse", "stat", "/dev/null", "end"])
    cfg["linux"]["namespaces"].append({"type": "user"})
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    cfg["mounts"] = [m for m in cfg["mounts"] if m["destination"] not in ("/sys",)]
    cfg["linux"]["devices"] = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o600}]
    rep = c.probe(cfg)
    eq(rep.get("stat[/dev/fuse].rdev"), M(c, "10:229", "0:0"), "/dev/fuse number")
    eq(rep.get("stat[/dev/null].rdev"), "1:3", "/dev/null number")


DEFAULT_DEVICES = {"/dev/null": "1:3", "/dev/zero": "1:5", "/dev/full": "1:7", "/dev/random": "1:8",
                   "/dev/urandom": "1:9", "/dev/tty": "5:0"}


DEFAULT_LINKS = {"/dev/fd": "/proc/self/fd", "/dev/stdin": "/proc/self/fd/0", "/dev/stdout": "/proc/self/fd/1",
                 "/dev/stderr": "/proc/self/fd/2"}


@case("default-devices", spec="config-linux.md Default Devices and /dev symlinks")
def t_devices(c):
    paths = list(DEFAULT_DEVICES) + list(DEFAULT_LINKS) + ["/dev/ptmx"]
    cfg = c.config(["/probe"] + sum([["stat", p] for p in paths], []) + ["end"])
    rep = c.probe(cfg)
    for p, rdev in DEFAULT_DEVICES.items():
        eq(rep.get(f"stat[{p}].type"), "c", f"{p} type")
        eq(rep.get(f"stat[{p}].rdev"), M(c, rdev, "0:0"), f"{p} device number")
        eq(rep.get(f"stat[{p}].mode"), "0666", f"{p} mode")
    for p, target in DEFAULT_LINKS.items():
        eq(rep.get(f"stat[{p}].target"), target, f"{p} symlink")
    ptmx = rep.get("stat[/dev/ptmx].target") or rep.get("stat[/dev/ptmx].rdev")
    check(ptmx in ("pts/ptmx", "/dev/pts/ptmx", "5:2"), f"/dev/ptmx: {ptmx}")


@case("linux-devices", spec="config-linux.md devices: type, major/minor, fileMode, uid, gid")
def t_linux_devices(c):
    cfg = c.config(["/probe", "stat", "/dev/fuse", "stat", "/dev/loopx", "end"])
    cfg["linux"]["devices"] = [
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o620, "uid": 0, "gid": 5},
        {"path": "/dev/loopx", "type": "b", "major": 7, "minor": 200, "fileMode": 0o600, "uid": 1000, "gid": 1000},
    ]
    rep = c.probe(cfg)
    eq(rep.get("stat[/dev/fuse].type"), "c", "/dev/fuse type")
    eq(rep.get("stat[/dev/fuse].rdev"), M(c, "10:229", "1:3"), "/dev/fuse number")
    eq(rep.get("stat[/dev/fuse].mode"), "0620", "/dev/fuse mode")
    eq(rep.get("stat[/dev/fuse].owner"), "0:5", "/dev/fuse owner")
    eq(rep.get("stat[/dev/loopx].type"), "b", "/dev/loopx type")
    eq(rep.get("stat[/dev/loopx].rdev"), "7:200", "/dev/loopx number")
    eq(rep.get("stat[/dev/loopx].owner"), "1000:1000", "/dev/loopx owner")
