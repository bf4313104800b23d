#!/usr/bin/env python3
"""What a VMM process's memory is, from /proc/PID/smaps (benchmarks/microvm.sh, vmm-boot.sh):

  vmm-memory.py --pid PID              a running VMM (the microvm monitor with its container)
  vmm-memory.py -- CMD [ARG...]        runs CMD and takes smaps at its peak RSS (VmHWM)

Prints one line, in KiB: rss (all of it), image (the executable's pages: clean ones are page
cache, shared by every brig process that maps them), guest (the guest RAM mapping: only what the
guest touched), own (the rest: the VMM's heap, thread stacks, dirty data, kvm_run pages) and
private_dirty+anon outside guest RAM. --json for a dict."""
import json
import re
import subprocess
import sys
import time

HEAD = re.compile(r"^[0-9a-f]+-[0-9a-f]+ ")


def parse(text):
    maps, cur = [], None
    for line in text.splitlines():
        if HEAD.match(line):
            f = line.split()
            cur = {"range": f[0], "perm": f[1], "path": f[5] if len(f) > 5 else "", "Size": 0, "Rss": 0,
                   "Private_Dirty": 0, "Anonymous": 0}
            maps.append(cur)
        elif cur is not None:
            k, _, v = line.partition(":")
            if k in cur and v.strip().endswith("kB"):
                cur[k] = int(v.split()[0])
    return maps


def breakdown(maps, exe):
    anon = [m for m in maps if not m["path"] and m["Size"] >= 64 * 1024]  # >= 64 MiB: guest RAM
    guest = sum(m["Rss"] for m in anon)
    image = sum(m["Rss"] for m in maps if m["path"] == exe)
    image_dirty = sum(m["Private_Dirty"] for m in maps if m["path"] == exe)
    rss = sum(m["Rss"] for m in maps)
    outside = [m for m in maps if m not in anon]
    return {"rss": rss, "image": image, "image_dirty": image_dirty, "guest": guest,
            "own": rss - image - guest + image_dirty,
            "private_dirty_anon": sum(max(m["Private_Dirty"], m["Anonymous"]) for m in outside)}


def exe_of(pid):
    import os
    return os.readlink(f"/proc/{pid}/exe")


def peak(argv):
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    best, hwm, exe = None, -1, None
    while p.poll() is None:
        try:
            exe = exe or exe_of(p.pid)
            st = open(f"/proc/{p.pid}/status").read()
            h = int(re.search(r"VmHWM:\s+(\d+)", st).group(1))
            text = open(f"/proc/{p.pid}/smaps").read()
            if h >= hwm and HEAD.match(text):  # (an exiting process's smaps is empty)
                hwm, best = h, text
        except (OSError, AttributeError):
            pass
        time.sleep(0.002)
    if best is None:
        sys.exit(f"{argv[0]} exited before its memory could be read (status {p.returncode})")
    return breakdown(parse(best), exe)


def main(args):
    as_json = "--json" in args
    args = [a for a in args if a != "--json"]
    if args[:1] == ["--pid"]:
        pid = int(args[1])
        r = breakdown(parse(open(f"/proc/{pid}/smaps").read()), exe_of(pid))
    elif args[:1] == ["--"]:
        r = peak(args[1:])
    else:
        sys.exit(__doc__)
    if as_json:
        print(json.dumps(r))
    else:
        print(" ".join(f"{k}={v}" for k, v in r.items()))


if __name__ == "__main__":
    main(sys.argv[1:])
