"""Benchmark (not a test): the probe's cost per intercepted call and the audit's slowdown.

    PYTHONPATH=harness python harness/c/bench_probe.py [--audit]

Per-call costs are measured from Python in a child with and without LD_PRELOAD (best of 5
repetitions): os.dup+os.close (2 fd calls), threading.Thread start+join (pthread_create,
pthread_detach, exit bookkeeping), time.sleep(0) (GIL release/re-take: pthread mutex and
condvar wrappers). --audit also times `teardown-audit audit` with the probe off/on.
"""

from __future__ import annotations

import sys
import textwrap
import time

from teardown_audit.isolated import child_env
from teardown_audit.native import find_probe_library, probe_env
from teardown_audit.proc import run_bounded

MICRO = """
import os, threading, time
def best(fn, n):
    out = []
    for _ in range(5):
        t = time.perf_counter(); fn(n); out.append((time.perf_counter() - t) / n)
    return min(out)
def fds(n):
    for _ in range(n): os.close(os.dup(0))
def threads(n):
    for _ in range(n):
        t = threading.Thread(target=int); t.start(); t.join()
def gil(n):
    for _ in range(n): time.sleep(0)
print(best(fds, 50000), best(threads, 1000), best(gil, 50000))
"""
BOUND = 600.0


def micro(env: dict[str, str]) -> list[float]:
    result = run_bounded(
        [sys.executable, "-I", "-S", "-c", textwrap.dedent(MICRO)],
        timeout=BOUND,
        env=child_env(env),
    )
    return [float(x) for x in result.stdout.split()]


def audit_seconds(env: dict[str, str]) -> float:
    start = time.monotonic()
    argv = [sys.executable, "-m", "teardown_audit", "audit"]
    result = run_bounded(argv, timeout=BOUND, env=child_env(env))
    if result.returncode != 0:
        print(result.stdout[-2000:], file=sys.stderr)
    return time.monotonic() - start


def main() -> int:
    so = find_probe_library()
    if so is None:
        print("build the probe first: make probe", file=sys.stderr)
        return 2
    off = {"TEARDOWN_AUDIT_PROBE": "0", "LD_PRELOAD": ""}
    on = probe_env(so, {})
    base, probed = micro(off), micro(on)
    names = ["dup+close (2 calls)", "thread start+join", "sleep(0): GIL drop/take"]
    for name, a, b in zip(names, base, probed):
        print(f"{name:26} {a * 1e9:9.0f} ns -> {b * 1e9:9.0f} ns  (+{(b - a) * 1e9:.0f} ns)")
    if "--audit" in sys.argv:
        t_off, t_on = audit_seconds(off), audit_seconds(on)
        print(f"teardown-audit audit: {t_off:.1f} s without the probe, {t_on:.1f} s with it "
              f"loaded in every process ({(t_on / t_off - 1) * 100:+.0f} %)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
