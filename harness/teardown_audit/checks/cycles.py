"""The create → exercise → drop cycle shared by the threads and fds checks, with GC control."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from typing import Callable, TypeVar

from teardown_audit.adapters import FAST, Adapter
from teardown_audit.callbacks import ProbeCallbacks
from teardown_audit.isolated import phase

T = TypeVar("T")


class ExerciseFailed(Exception):
    """The target's fast call did not succeed: the check cannot say anything about teardown."""


def one_cycle(adapter: Adapter, callbacks: ProbeCallbacks, collect: bool) -> None:
    handle = adapter.create(callbacks.fast, callbacks.slow, None)
    outcome = adapter.call(handle, FAST)
    phase("a create → fast call → drop cycle")
    # The drop under audit: the harness held the only reference.
    del handle
    if collect:
        gc.collect()
    if not outcome.ok:
        raise ExerciseFailed(f"fast call failed: {outcome.detail}")


@contextlib.contextmanager
def gc_mode(collect: bool) -> Iterator[None]:
    """Without collect, automatic GC is off too: otherwise a pass could run at any allocation and
    hide (or not) a teardown that only happens at GC, which would make the result random."""
    was_enabled = gc.isenabled()
    if not collect:
        gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def measure_cycles(
    adapter: Adapter, cycles: int, collect: bool, probe: Callable[[], T]
) -> tuple[T, list[T]]:
    """Warm up with one cycle (so lazily created process-wide resources are in the baseline),
    then probe after each of `cycles` drops. Returns (baseline, per-cycle probes)."""
    callbacks = ProbeCallbacks()
    one_cycle(adapter, callbacks, collect=True)
    gc.collect()
    with gc_mode(collect):
        baseline = probe()
        after = []
        for _ in range(cycles):
            one_cycle(adapter, callbacks, collect)
            after.append(probe())
    return baseline, after


def gc_label(collect: bool) -> str:
    return "with gc.collect()" if collect else "without gc.collect()"
