"""The OCI runtime conformance suite (conformance/run is its entry point; README.md its manual).

Layout, one concern a module (stdlib only: the VM test host's guest has just Debian's python3):

  core.py      paths, settings (--timeout, --time-scale, --rootless), Fail/Skip/check/eq/M, @case
  runtime.py   Runtime: the runtime under test through its runc-compatible CLI
  host.py      facts about this host from /proc: namespaces, cgroup hierarchies, leftovers
  context.py   probe and rootfs (cached), base config, bundles, Ctx (one case: create/probe/cleanup)
  runner.py    one case (timeout, cleanup, leaks), a suite as TAP, --unshare-unified, --self-test
  results.py   RESULTS.md (measured or json: columns), --baseline, --at-least
  notes.py     notes.toml: why a cell does not pass; a note on a passing cell fails the run
  features.py  --check-features
  cli.py       the command line
  cases/       the cases, one module per area (cases/__init__.py: the order, how to add a case)
  tests/       unit tests of the package itself: python3 -m unittest discover -s conformance/tests -t .
"""
