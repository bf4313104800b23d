#!/usr/bin/env python3
"""Asks a stalled VM test host's QEMU (its QMP socket) whether it runs and where the vCPUs are,
twice a few seconds apart (moving or stopped), then injects an NMI: a live guest kernel logs
"NMI received" on its console.

    python3 e2e/vmhost/qmp-diagnose.py RUN/qmp.sock
"""
import json
import re
import socket
import sys
import time


def main(path: str) -> int:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    try:
        s.connect(path)
        f = s.makefile("rw")
        json.loads(f.readline())  # the greeting

        def call(cmd: str, **args):
            f.write(json.dumps({"execute": cmd, "arguments": args}) + "\n")
            f.flush()
            while True:
                r = json.loads(f.readline())
                if "return" in r or "error" in r:
                    return r.get("return", r.get("error"))

        call("qmp_capabilities")
        print(f"vmhost: QEMU's status: {call('query-status').get('status')}")
        for look in (1, 2):
            regs = call("human-monitor-command", **{"command-line": "info registers -a"})
            cpus = re.findall(r"RIP=([0-9a-f]+) RFL=[0-9a-f]+ \[.*?\] CPL=(\d).*?HLT=(\d)", regs, re.S)
            shown = "; ".join(f"RIP={r} CPL={c} HLT={h}" for r, c, h in cpus) or regs[:300]
            print(f"vmhost: vCPUs, look {look}: {shown}")
            time.sleep(3)
        call("inject-nmi")
        return 0
    except (OSError, ValueError) as e:
        print(f"vmhost: QEMU's monitor did not answer ({e}): QEMU itself is stuck")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
