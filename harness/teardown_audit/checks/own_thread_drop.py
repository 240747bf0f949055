"""Check: the last reference dropped on one of the target's own threads still tears it down.

A long callback takes the only reference to its own object into its frame, the call times out
(the callback is abandoned) and the caller lets go of the object. When the callback returns, its
frame drops the last reference on the target's own loop thread. A teardown that joins its
threads there would join the very thread it runs on (bashkit's V5: a panic in Rust, a deadlock
in C); the protocol hands the joins to a detached shutdown instead. Within the bound, every
thread the object started must be gone.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from typing import Any

from teardown_audit.adapters import SLOW, Adapter
from teardown_audit.callbacks import ProbeCallbacks
from teardown_audit.isolated import CHILD_CHECKS, phase, run_isolated
from teardown_audit.probes import live_threads, thread_count
from teardown_audit.settings import AuditSettings
from teardown_audit.verdict import Verdict, errored, failed, passed, skipped

NAME = "drop-on-own-thread"
# How long the callback holds the object before its frame drops it, in call timeouts: the call
# must time out (abandoning the callback) well before the drop.
HOLD_FACTOR = 2.0
POLL = 0.01


def _own_counts(adapter: Adapter) -> dict[str, int]:
    counters = adapter.counters() or {}
    return {k: v for k, v in counters.items() if v}


def check_in_process(adapter: Adapter, params: Mapping[str, Any]) -> Verdict:
    if not adapter.supports_timeout:
        return skipped(NAME, f"target {adapter.name!r} cannot abandon a callback (no timeout)")
    bound = float(params.get("bound", 5.0))
    call_timeout = float(params.get("call_timeout", 0.5))
    callbacks = ProbeCallbacks(hold_seconds=HOLD_FACTOR * call_timeout)
    holder: dict[str, Any] = {}

    async def slow_holding_its_object() -> str:
        own = holder.pop("handle")  # from now on this frame holds the only reference
        try:
            return await callbacks.slow()
        finally:
            del own  # the last reference goes here, on the target's thread

    baseline = thread_count()
    handle = adapter.create(callbacks.fast, slow_holding_its_object, call_timeout)
    holder["handle"] = handle
    phase("the call whose callback holds its own object")
    outcome = adapter.call(handle, SLOW)
    del handle
    if not outcome.timed_out:
        return errored(NAME, f"the call did not time out as set up ({outcome.detail})")
    phase("the last reference dropped on the target's own thread")
    ended = time.monotonic() + bound  # the callback returns (or the target cancels it)
    while not (callbacks.finished.is_set() or callbacks.cancelled.is_set()):
        if time.monotonic() > ended:
            break
        time.sleep(POLL)
    start = time.monotonic()
    while time.monotonic() - start < bound:
        if thread_count() <= baseline and not _own_counts(adapter):
            elapsed = time.monotonic() - start
            return passed(
                NAME,
                f"torn down {elapsed:.3f} s after the callback dropped the last reference on"
                f" the target's thread (no self-join)",
            )
        time.sleep(POLL)
    alive = [f"tid {t.tid} ({t.name}) {t.state}" for t in live_threads()]
    evidence = [f"threads now (baseline {baseline}): " + ", ".join(alive)]
    counts = _own_counts(adapter)
    if counts:
        evidence.append(f"target counters not back to zero: {counts}")
    diagnosis, stacks = _stacks_of_this_process()
    evidence += ["native stacks of this process:", *stacks]
    return failed(
        NAME,
        f"+{thread_count() - baseline} threads still alive {bound:g} s after the last reference"
        f" was dropped on the target's own thread: never torn down (a teardown joining the"
        f" thread it runs on never returns; a hand-off that does not join leaves them parked;"
        f" stacks in the evidence; {diagnosis})",
        evidence=evidence,
    )


def _stacks_of_this_process() -> tuple[str, list[str]]:
    """The watchdog's one-line diagnosis and native stacks of this process's threads, the
    waits on each other that a condition-variable cycle leaves no other trace of."""
    try:
        from teardown_audit.watchdog import capture_hang

        report = capture_hang(os.getpid())
    except Exception as exc:  # evidence only: never let it hide the verdict
        return f"stacks unavailable: {exc}", []
    return report.diagnosis, _other_threads(report.native_stacks, threading.get_native_id())


def _other_threads(native_stacks: str, own_tid: int, frames: int = 8) -> list[str]:
    """The top frames of every thread but the calling one (eu-stack/gdb text, "TID n:" heads)."""
    lines: list[str] = []
    keep, kept = False, 0
    for line in native_stacks.splitlines():
        head = line.strip()
        if head.startswith(("TID ", "Thread ")):
            keep = str(own_tid) not in head.split(":")[0]
            kept = 0
            if keep:
                lines.append(head)
        elif keep and kept < frames and head.startswith("#"):
            lines.append("  " + head)
            kept += 1
    return lines


CHILD_CHECKS[NAME] = check_in_process


def run(settings: AuditSettings) -> Verdict:
    params = {"bound": settings.cancel_bound, "call_timeout": settings.call_timeout}
    verdict, _ = run_isolated(
        NAME, settings.target, params, python=settings.python, timeout=settings.child_timeout
    )
    return verdict
