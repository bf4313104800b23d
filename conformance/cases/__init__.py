"""The cases, one module per area. `CASES` is the suite's order (TAP numbers, --list, RESULTS.md rows).

Adding a case: write a function in the area's module (or a new module, added to AREAS below)
and decorate it:

    @case("mount-foo", features=["mountOptions.foo"], spec="config.md mounts: what the text says")
    def t_mount_foo(c):
        cfg = c.config(["/probe", "mount", "/mnt/foo", "end"])   # base config running the probe
        cfg["mounts"].append({...})
        rep = c.probe(cfg)               # create, start, wait until stopped: the probe's key=value report
        eq(rep.get("mount[/mnt/foo].fstype"), M(c, "tmpfs", "x"), "fstype")

- `c` is a context.Ctx: c.config(args), c.bundle(cfg), c.create(cfg) -> (id, bundle, stdout path),
  c.probe(cfg), c.rt (runtime.Runtime: c.rt.ok("start", cid), c.rt.call(...), c.rt.state(cid)),
  c.wait_stopped(cid), c.read(path), c.dir (a temp dir removed afterwards). Cleanup (delete
  --force, leftover cgroups) always runs; a leak fails the case.
- Assert with check(cond, msg) / eq(got, want, what); raise Skip(why) only where the host lacks
  something (a controller, a device), never for a runtime's failure.
- Wrap one expected value per case in M(c, right, wrong): --self-test swaps in the wrong one and
  the case must then fail (a case that cannot fail is a defect).
- `features` are the features.md keys the case exercises (--check-features).
- A new case runs after the ones in ORDER; nothing else to register. If it fails for some runtime
  column, explain why in notes.toml (and remove the note once it passes: the run fails until then).
"""
import importlib

from ..core import REGISTRY

# The modules of this package, imported (and so registered) in this order.
AREAS = ["lifecycle", "process", "terminal", "hooks", "namespaces", "mounts", "devices", "cgroups", "seccomp",
         "exec", "cli"]
for _area in AREAS:
    importlib.import_module(f"{__name__}.{_area}")

# The order the cases had when the suite was one file (RESULTS.md's rows, TAP numbers); cases not
# listed follow in the order of AREAS, then of their module.
ORDER = """
lifecycle start-twice start-stopped delete-running unknown-id create-duplicate-id kill-signals kill-default-term
delete-created run-detach kill-created delete-force delete-force-created run-exit-status state-annotations
invalid-config preserve-fds pid-file console-socket hooks hook-failure-aborts-create args-path-lookup hook-timeout
hooks-ignoring-stdin hooks-post-failures-warn process-args-env-cwd user capabilities capabilities-root rlimits
no-new-privileges oom-score-adj hostname domainname namespace-pid namespace-network namespace-ipc namespace-uts
namespace-mount namespace-cgroup namespace-user namespace-time namespace-join-path mount-tmpfs mount-bind-ro
mount-propagation mount-options mount-option-defaults mount-remount mount-cgroup runc-spec-default
mount-symlink-escape namespace-user-devices root-readonly masked-paths readonly-paths default-devices linux-devices
sysctl cgroups-path cgroups-v2-path cgroup-memory cgroup-pids cgroup-cpu cgroup-cpuset cgroup-memory-swap cgroup-oom
cgroup-hugetlb cgroup-io cgroup-devices cgroup-freeze kill-all update-resources events-stats ps
cgroup-namespace-view seccomp-errno exec-options exec rootfs-proc-sys-symlink hooks-startcontainer-confined
seccomp-notify-no-listener sysctl-uts-conflict terminal-pty-owner exec-process-json-no-user exec-cap-unknown
cwd-needs-privilege exec-dac-override kill-signal-zero mount-rro mount-tmpfs-mode-copyup mount-dev-readonly
hooks-cwd-env exec-failure-exit-255 ps-stopped list-events-key-order spec-default-namespaces help-every-verb
""".split()


_rank = {n: i for i, n in enumerate(ORDER)}
CASES = sorted(REGISTRY, key=lambda f: _rank.get(f.case_name, len(ORDER)))  # stable: new cases keep AREAS order
