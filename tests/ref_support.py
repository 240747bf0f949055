"""Helpers for the teardown_ref tests, in the style of CPython's threading_helper.

Timeouts are named safety bounds, never speed assertions: a healthy run is 10-1000x faster.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import teardown_ref

# A hang bound: far above any healthy duration, low enough that a deadlock fails the test.
SUBPROCESS_TIMEOUT = 60.0
# How long an abandoned callback would run if nothing cancelled it.
ABANDONED_SECONDS = 30.0
# Cancellation bound: a cancelled drop takes ~1-5 ms here; 1 s is 200x that.
DROP_BOUND = 1.0
# How long to wait for a detached hand-off shutdown (the one non-synchronous path).
HANDOFF_BOUND = 10.0
# A timeout meant to abandon a callback that is already running: the callback must have started
# first, and a fresh per-execution worker (thread, attach, new event loop) can take tens of ms
# on a loaded 2-core machine. Callbacks that are abandoned sleep much longer than this.
ABANDON_TIMEOUT = 0.5

OWN_COUNTERS = ("tools", "workers", "pool_threads", "open_loops", "inflight", "executions")


def thread_count() -> int:
    return len(os.listdir("/proc/self/task"))


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def own_counters() -> dict[str, int]:
    stats = teardown_ref.stats()
    return {key: stats[key] for key in OWN_COUNTERS}


def assert_all_released(context: str) -> None:
    """Every thread, loop and callback of teardown_ref is gone, exactly."""
    leftover = {key: value for key, value in own_counters().items() if value}
    assert not leftover, f"{context}: teardown_ref still holds {leftover}"


def wait_for(predicate: Callable[[], bool], bound: float, what: str) -> None:
    start = time.monotonic()
    while not predicate():
        elapsed = time.monotonic() - start
        assert elapsed < bound, f"{what}: still false after {elapsed:.2f}s"
        time.sleep(0.005)


def echo_params(params: dict[str, Any], stdin: str | None) -> str:
    return f"params={sorted(params.items())} stdin={stdin!r}\n"


async def async_echo(params: dict[str, Any], stdin: str | None) -> str:
    await asyncio.sleep(0)
    return echo_params(params, stdin)


def run_python(
    code: str, *args: str, env: dict[str, str] | None = None, timeout: float | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter in its own process group, killed at the bound.

    Without `timeout`, a hang fails the test (bound SUBPROCESS_TIMEOUT); with it, a hang is an
    expected outcome and returns returncode None.
    """
    argv = [sys.executable, "-X", "dev", "-W", "error::ResourceWarning", "-c", code, *args]
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, **(env or {})},
    )
    hung = False
    try:
        out, err = proc.communicate(timeout=timeout or SUBPROCESS_TIMEOUT)
    except subprocess.TimeoutExpired:
        hung = True
        os.killpg(proc.pid, 9)
        out, err = proc.communicate()
        if timeout is None:
            raise AssertionError(
                f"subprocess hung for {SUBPROCESS_TIMEOUT}s\nstdout: {out}\nstderr: {err}"
            ) from None
    finally:
        try:
            os.killpg(proc.pid, 9)  # nothing of the group may outlive the run
        except ProcessLookupError:
            pass
    return subprocess.CompletedProcess(argv, None if hung else proc.returncode, out, err)
