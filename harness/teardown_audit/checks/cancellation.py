"""Check: dropping an object cancels its abandoned callback within a bound.

A tool with a short timeout runs the long callback; the call times out (the callback is abandoned
but still running on the target's thread); then the tool is dropped. The drop must return within
the bound, and the callback must see CancelledError within the bound (measured from the start of
the drop). A drop that waits for the callback to finish, or leaves it running, fails.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from teardown_audit.adapters import SLOW, Adapter, Outcome
from teardown_audit.callbacks import ProbeCallbacks
from teardown_audit.isolated import CHILD_CHECKS, phase, run_isolated
from teardown_audit.settings import AuditSettings
from teardown_audit.verdict import Verdict, errored, failed, passed, skipped

NAME = "bounded-cancellation"


def check_in_process(adapter: Adapter, params: Mapping[str, Any]) -> Verdict:
    if not adapter.supports_timeout:
        return skipped(NAME, f"target {adapter.name!r} cannot abandon a callback (no timeout)")
    bound = float(params.get("bound", 5.0))
    call_timeout = float(params.get("call_timeout", 0.2))
    callbacks = ProbeCallbacks(hold_seconds=float(params.get("hold_seconds", 10.0)))
    handle = adapter.create(callbacks.fast, callbacks.slow, call_timeout)
    phase("the call that abandons the long callback")
    start = time.monotonic()
    outcome = _call_within(adapter, handle, bound)
    call_time = time.monotonic() - start
    if outcome is None:
        # The call outlived its own timeout by far: say so, rather than let the child hang.
        return failed(
            NAME,
            f"timeout not honoured: the call with timeout_seconds={call_timeout:g} had not"
            f" returned after {call_time:.2f} s (it waits for the callback)",
            evidence=[f"the long callback started: {callbacks.started.is_set()}"],
        )
    evidence = [
        f"call with timeout_seconds={call_timeout:g}: {outcome.detail} after {call_time:.3f} s"
    ]
    if not callbacks.started.is_set():
        return errored(NAME, "the long callback never started", evidence=evidence)
    if not outcome.timed_out:
        return failed(
            NAME,
            f"timeout not honoured: the call returned after {call_time:.2f} s without a timeout "
            f"({outcome.detail})",
            evidence=evidence,
        )
    phase("the drop of a tool with an abandoned callback")
    drop_start = time.monotonic()
    del handle  # the drop under audit
    drop_time = time.monotonic() - drop_start
    cancelled_by_return = callbacks.cancelled.is_set()
    seen = callbacks.cancelled.wait(max(0.0, bound - drop_time))
    seen_after = time.monotonic() - drop_start
    evidence += [
        f"drop returned in {drop_time:.3f} s (bound {bound:g} s)",
        f"CancelledError {'observed' if seen else 'not observed'} "
        + (f"{seen_after:.3f} s after the drop began" if seen else f"within {bound:g} s"),
        f"cancelled before the drop returned: {cancelled_by_return}",
    ]
    data = {
        "drop_seconds": drop_time,
        "cancelled": seen,
        "cancel_seconds": seen_after if seen else None,
        "cancelled_before_drop_returned": cancelled_by_return,
        "bound": bound,
    }
    if drop_time > bound or callbacks.finished.is_set():
        # The callback ran to its end while the drop waited: nobody cancelled it.
        finished = " (it ran to completion)" if callbacks.finished.is_set() else ""
        return failed(
            NAME,
            f"drop took {drop_time:.2f} s (bound {bound:g} s): it waited for the abandoned "
            f"callback instead of cancelling it{finished}",
            evidence=evidence,
            data=data,
        )
    if not seen:
        return failed(
            NAME,
            f"abandoned callback not cancelled within {bound:g} s of the drop (CancelledError "
            f"not observed; drop returned in {drop_time:.3f} s and left it running)",
            evidence=evidence,
            data=data,
        )
    return passed(
        NAME,
        f"abandoned callback cancelled: drop returned in {drop_time:.3f} s, CancelledError seen "
        f"{seen_after:.3f} s after the drop began (bound {bound:g} s)",
        evidence=evidence,
        data=data,
    )


def _call_within(adapter: Adapter, handle: Any, bound: float) -> Outcome | None:
    """adapter.call(handle, SLOW) on a helper thread; None when it has not returned in `bound`
    (the thread is left behind, a daemon: the child process exits with its verdict)."""
    box: list[Outcome] = []
    caller = threading.Thread(
        target=lambda: box.append(adapter.call(handle, SLOW)), name="slow-call", daemon=True
    )
    caller.start()
    caller.join(bound)
    return box[0] if box else None


CHILD_CHECKS[NAME] = check_in_process


def run(settings: AuditSettings) -> Verdict:
    params = {
        "bound": settings.cancel_bound,
        "call_timeout": settings.call_timeout,
        # Below the child's hang bound: a drop that waits for the callback (instead of
        # cancelling it) returns, and is named, before the child counts as hung.
        "hold_seconds": min(settings.hold_seconds, settings.child_timeout / 2),
    }
    verdict, _ = run_isolated(
        NAME, settings.target, params, python=settings.python, timeout=settings.child_timeout
    )
    return verdict
