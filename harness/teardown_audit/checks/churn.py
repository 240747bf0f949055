"""Check: concurrent churn never deadlocks, errs or leaks.

T threads x I iterations of mixed operations — a fast callback on a fresh tool; a call that times
out followed by an immediate drop (abandoned callback still running); several calls on one tool —
repeated R times, in a child process under run_bounded: a deadlock becomes a diagnosed hang.
Drops here happen on non-main threads and concurrently with other tools' calls.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Mapping
from typing import Any, Callable

from teardown_audit.adapters import FAST, SLOW, Adapter
from teardown_audit.callbacks import ProbeCallbacks
from teardown_audit.isolated import CHILD_CHECKS, phase, run_isolated
from teardown_audit.probes import live_threads, wait_thread_gone
from teardown_audit.settings import AuditSettings
from teardown_audit.verdict import Verdict, failed, passed

NAME = "concurrent-churn"


def _op_fast(adapter: Adapter, cb: ProbeCallbacks, params: Mapping[str, Any]) -> str | None:
    handle = adapter.create(cb.fast, cb.slow, None)
    outcome = adapter.call(handle, FAST)
    del handle
    return None if outcome.ok else f"fast call failed: {outcome.detail}"


def _op_timeout_drop(adapter: Adapter, cb: ProbeCallbacks, params: Mapping[str, Any]) -> str | None:
    handle = adapter.create(cb.fast, cb.slow, float(params["call_timeout"]))
    outcome = adapter.call(handle, SLOW)
    del handle  # immediately, with the abandoned callback still in flight
    return None if outcome.timed_out else f"slow call did not time out: {outcome.detail}"


def _op_many_calls(adapter: Adapter, cb: ProbeCallbacks, params: Mapping[str, Any]) -> str | None:
    handle = adapter.create(cb.fast, cb.slow, None)
    for i in range(int(params["calls_per_tool"])):
        outcome = adapter.call(handle, FAST)
        if not outcome.ok:
            return f"call {i + 1} on one tool failed: {outcome.detail}"
    del handle
    return None


Op = Callable[[Adapter, ProbeCallbacks, Mapping[str, Any]], "str | None"]
OPS: tuple[tuple[str, Op], ...] = (
    ("fast", _op_fast),
    ("timeout-then-drop", _op_timeout_drop),
    ("many-calls", _op_many_calls),
)


def churn_in_process(adapter: Adapter, params: Mapping[str, Any]) -> Verdict:
    threads, iterations = int(params["threads"]), int(params["iterations"])
    repeats = int(params["repeats"])
    callbacks = ProbeCallbacks(hold_seconds=float(params.get("hold_seconds", 10.0)))
    errors: list[str] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        for i in range(iterations):
            name, op = ops[(index + i) % len(ops)]
            try:
                problem = op(adapter, callbacks, params)
            except Exception:
                problem = "raised " + traceback.format_exc().strip().splitlines()[-1]
            if problem:
                with lock:
                    errors.append(f"thread {index} iteration {i} ({name}): {problem}")

    # Without a timeout the target cannot abandon a callback: that operation does not apply.
    ops = OPS if adapter.supports_timeout else tuple(o for o in OPS if o[0] != "timeout-then-drop")
    _one_cycle_warmup(adapter, callbacks)
    baseline = len(live_threads())
    counters_before = adapter.counters()
    for r in range(repeats):
        phase(f"churn repeat {r + 1}/{repeats}: {threads} threads x {iterations} iterations")
        pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
            if t.native_id is not None:
                wait_thread_gone(t.native_id)
    grown = len(live_threads()) - baseline
    counters_after = adapter.counters()
    total = threads * iterations * repeats
    evidence = [
        f"{total} operations ({threads} threads x {iterations} iterations x {repeats} repeats)",
        f"threads after churn minus before: {grown:+d}",
        *errors[:10],
    ]
    if counters_before is not None:
        evidence.append(
            f"counters before {dict(counters_before)}, after {dict(counters_after or {})}"
        )
    data = {"operations": total, "errors": len(errors), "thread_growth": grown}
    if errors:
        return failed(
            NAME,
            f"{len(errors)}/{total} operations failed: {errors[0]}",
            evidence=evidence,
            data=data,
        )
    if grown > 0:
        return failed(
            NAME,
            f"+{grown} threads still alive after {total} operations (abandoned callbacks or "
            "workers not joined by their drops)",
            evidence=evidence,
            data=data,
        )
    if counters_before is not None and dict(counters_after or {}) != dict(counters_before):
        return failed(
            NAME, "counters not back to baseline after churn", evidence=evidence, data=data
        )
    return passed(
        NAME,
        f"{total} mixed operations on {threads} threads: no deadlock, no error, no leftover thread",
        evidence=evidence,
        data=data,
    )


def _one_cycle_warmup(adapter: Adapter, callbacks: ProbeCallbacks) -> None:
    handle = adapter.create(callbacks.fast, callbacks.slow, None)
    adapter.call(handle, FAST)
    del handle


CHILD_CHECKS[NAME] = churn_in_process


def churn_params(settings: AuditSettings) -> dict[str, Any]:
    return {
        "threads": settings.churn_threads,
        "iterations": settings.churn_iterations,
        "repeats": settings.churn_repeats,
        "calls_per_tool": settings.churn_calls_per_tool,
        "call_timeout": settings.churn_timeout,
        "hold_seconds": settings.hold_seconds,
    }


def run(settings: AuditSettings) -> Verdict:
    verdict, _ = run_isolated(
        NAME,
        settings.target,
        churn_params(settings),
        python=settings.python,
        timeout=settings.child_timeout,
    )
    return verdict
