"""Cost of one call of each probe the checks make (`probes.thread_count`, `fd_snapshot`, ...).

Timed with `timeit` (best of 5 repeats of batches of at least 0.2 s: the usual lower bound free
of scheduling noise), with the process's thread and fd counts, since the cost is per thread and
per fd.
"""

from __future__ import annotations

import os
import timeit
from typing import Any, Callable

from teardown_audit import probes


def _per_call(fn: Callable[[], Any]) -> dict[str, float]:
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()  # at least 0.2 s per batch
    runs = [t / number for t in timer.repeat(repeat=5, number=number)]
    return {"best": min(runs), "median": sorted(runs)[len(runs) // 2]}


def measure() -> dict[str, Any]:
    before = probes.fd_snapshot()
    return {
        "threads": probes.thread_count(),
        "fds": len(os.listdir("/proc/self/fd")),
        "calls": {
            "thread_count": _per_call(probes.thread_count),
            "live_threads": _per_call(probes.live_threads),
            "fd_snapshot": _per_call(probes.fd_snapshot),
            "fd_diff": _per_call(lambda: probes.fd_diff(before, probes.fd_snapshot(), 1)),
        },
    }
