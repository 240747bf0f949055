"""Drop latency: how long `del tool` takes, idle after one call and with an abandoned callback.

Idle: create, one `noop` call, then time the drop of the only reference. Abandoned: a tool with
a short timeout runs `slow`, which times out and keeps running; then the drop is timed, and so
is the moment `slow` observed CancelledError (measured from the start of the drop: the contract
says it happens before the drop returns). The timeout itself is not part of any figure.
Implementations are interleaved sample by sample, like the dispatch rounds.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from bench.implementations import Implementation, Probe, exit_code
from bench.timing import latency

ABANDON_TIMEOUT = 0.02
# A correct drop has cancelled the callback when it returns; a late one still gets this long.
CANCEL_GRACE = 2.0


def _timed_drop(holder: list[Any]) -> float:
    t0 = time.perf_counter()
    holder.clear()  # the only reference: the drop runs here
    return time.perf_counter() - t0


def idle(impls: list[Implementation], *, samples: int) -> dict[str, dict[str, float]]:
    took: dict[str, list[float]] = {impl.name: [] for impl in impls}
    gc.disable()  # the contract: no GC is needed, so none may help (or add noise)
    try:
        for _ in range(samples):
            for impl in impls:
                holder = [impl.make(Probe(), None)]
                if exit_code(holder[0].execute_sync("noop")) != 0:
                    raise RuntimeError(f"{impl.name}: noop call failed")
                took[impl.name].append(_timed_drop(holder))
    finally:
        gc.enable()
    return {name: latency(values) for name, values in took.items()}


def abandoned(impls: list[Implementation], *, samples: int) -> dict[str, dict[str, Any]]:
    """{name: {"drop": latency, "cancel_observed": latency, "late": n}}; `late` counts the
    samples where CancelledError was seen only after the drop returned (or never)."""
    drops: dict[str, list[float]] = {impl.name: [] for impl in impls}
    cancels: dict[str, list[float]] = {impl.name: [] for impl in impls}
    late = dict.fromkeys(drops, 0)
    gc.disable()
    try:
        for _ in range(samples):
            for impl in impls:
                probe = Probe()
                holder = [impl.make(probe, ABANDON_TIMEOUT)]
                result = holder[0].execute_sync("slow")
                if exit_code(result) == 0 or not probe.started:
                    raise RuntimeError(f"{impl.name}: slow call did not time out: {result!r}")
                t0 = time.perf_counter()
                drops[impl.name].append(_timed_drop(holder))
                returned = time.perf_counter()
                deadline = returned + CANCEL_GRACE
                while not probe.cancelled and time.perf_counter() < deadline:
                    time.sleep(0.001)
                if not probe.cancelled or probe.cancelled[0] > returned:
                    late[impl.name] += 1
                seen = probe.cancelled[0] if probe.cancelled else deadline
                cancels[impl.name].append(seen - t0)
    finally:
        gc.enable()
    return {
        name: {
            "drop": latency(drops[name]),
            "cancel_observed": latency(cancels[name]),
            "late": late[name],
        }
        for name in drops
    }
