"""Cases: process.terminal: the console socket and the pty."""
import os
import select
import socket
import subprocess
import time

from ..core import case, check, eq, Fail, M, settings, until
from ..context import parse_report


@case("console-socket", spec="config.md process.terminal; runc CLI --console-socket (SCM_RIGHTS)")
def t_console(c):
    cfg = c.config(["/probe", "isatty", "winsize", "end"])
    cfg["process"]["terminal"] = True
    cfg["process"]["consoleSize"] = {"height": 30, "width": 100}
    sockpath = os.path.join(c.dir, "console.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sockpath)
    srv.listen(1)
    srv.settimeout(10 * settings.time_scale)
    got = {}

    import threading

    def accept():
        try:
            conn, _ = srv.accept()
            _msg, fds, _flags, _addr = socket.recv_fds(conn, 4096, 4)
            got["fds"] = fds
            conn.close()
        except Exception as e:  # noqa
            got["err"] = repr(e)

    th = threading.Thread(target=accept)
    th.start()
    b = c.bundle(cfg)
    cid = c.new_id()
    p = c.rt.call("create", "--bundle", b, "--console-socket", sockpath, cid)
    th.join(10 * settings.time_scale)
    srv.close()
    if p.returncode != 0:
        raise Fail(f"create exited {p.returncode}: {p.err.strip()[:300]}")
    check(got.get("fds"), f"no fd received over the console socket ({got.get('err', '')})")
    master = got["fds"][0]
    for fd in got["fds"][1:]:
        os.close(fd)
    c.rt.ok("start", cid)
    data = b""
    deadline = until(10)
    while time.time() < deadline and b"end=1" not in data:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
    os.close(master)
    rep = parse_report(data.decode(errors="replace").replace("\r", ""))
    eq(rep.get("isatty.0"), M(c, "1", "0"), "stdin is a tty")
    eq(rep.get("isatty.1"), "1", "stdout is a tty")
    eq(rep.get("winsize"), "30x100", "terminal size from process.consoleSize")


@case("terminal-pty-owner", spec="runc: the pty belongs to the process's uid, its group stays devpts' gid=")
def t_terminal_owner(c):
    cfg = c.config(["/probe", "stat", "/dev/pts/0", "end"])
    cfg["process"]["terminal"] = True
    cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
    cfg["mounts"][2]["options"].append("gid=5")
    b = c.bundle(cfg)
    cid = c.new_id()
    # The runtime runs in the foreground on a pty of ours (raw, so it adds no "\r" itself).
    import pty
    import termios
    import tty
    master, slave = pty.openpty()
    tty.setraw(slave)

    def ctty():
        os.setsid()
        import fcntl
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    p = subprocess.Popen(c.rt.argv("run", "--bundle", b, cid), stdin=slave, stdout=slave, stderr=slave,
                         preexec_fn=ctty)
    os.close(slave)
    data = b""
    deadline = time.time() + 15
    while time.time() < deadline:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
        elif p.poll() is not None:
            break
    os.close(master)
    rc = p.wait(timeout=10)
    text = data.decode(errors="replace")
    check(rc == 0, f"run exited {rc}: {text[-300:]!r}")
    # (runc 1.1.5 leaves ONLCR set: lines end in "\r\n" as with any pty.)
    rep = parse_report(text.replace("\r", ""))
    eq(rep.get("stat[/dev/pts/0].owner"), M(c, "1000:5", "0:5"), "pty owner")
