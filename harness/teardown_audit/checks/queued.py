"""Check: calls queued but not started when the object is dropped are rejected, never run.

On an object whose calls share one loop thread, a blocking callback holds that thread past the
call's timeout, and a second call queues behind it and times out too, never started. Then the
object is dropped. Teardown must reject the queued call (a closing flag); a callback that starts
after the drop began ran code the caller had already given up on, during teardown.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from teardown_audit.adapters import Adapter
from teardown_audit.isolated import CHILD_CHECKS, phase, run_isolated
from teardown_audit.settings import AuditSettings
from teardown_audit.verdict import Verdict, errored, failed, passed, skipped

NAME = "queued-calls-rejected"
# How long the blocking callback holds the loop thread, in call timeouts: past both calls'
# timeouts (the second call is made after the first timed out and must time out still queued).
BLOCK_FACTOR = 3.0


def check_in_process(adapter: Adapter, params: Mapping[str, Any]) -> Verdict:
    if not adapter.supports_timeout:
        return skipped(NAME, f"target {adapter.name!r} cannot abandon a callback (no timeout)")
    call_timeout = float(params.get("call_timeout", 0.5))
    block_seconds = BLOCK_FACTOR * call_timeout
    bound = float(params.get("bound", 5.0))
    probe_started: list[float] = []
    block_done = threading.Event()

    # Both async: an async callback runs on the target's loop thread (bashkit runs plain
    # callbacks on the caller's thread), and a blocking call inside one holds that thread.
    async def block() -> str:
        time.sleep(block_seconds)  # not an await: the loop thread is held
        block_done.set()
        return "blocked"

    async def probe() -> str:
        probe_started.append(time.monotonic())
        return "probe"

    handle = adapter.create_shared({"block": block, "probe": probe}, call_timeout)
    if handle is None:
        return skipped(NAME, f"target {adapter.name!r} has no object whose calls share a loop")
    phase("a blocking call that holds the loop thread")
    first = adapter.call(handle, "block")
    phase("a second call queued behind it")
    second = adapter.call(handle, "probe")
    evidence = [f"blocking call: {first.detail}", f"queued call: {second.detail}"]
    if not (first.timed_out and second.timed_out) or probe_started:
        return errored(
            NAME,
            "could not queue a call behind a blocking one (calls did not time out as set up)",
            evidence=evidence,
        )
    phase("the drop with a queued call")
    drop_start = time.monotonic()
    del handle  # the drop under audit
    drop_time = time.monotonic() - drop_start
    # A target that does not wait for its loop thread may start the queued call later.
    block_done.wait(bound)
    time.sleep(call_timeout)
    evidence.append(f"drop returned in {drop_time:.3f} s")
    data = {"drop_seconds": drop_time, "queued_call_started": bool(probe_started)}
    if probe_started:
        late = probe_started[0] - drop_start
        return failed(
            NAME,
            f"a call queued before the drop started {late:.3f} s after the drop began: queued"
            " but unstarted calls are not rejected during teardown (no closing flag)",
            evidence=evidence,
            data=data,
        )
    return passed(
        NAME,
        f"queued call rejected: it never started (drop returned in {drop_time:.3f} s, waiting"
        f" for the blocking callback's {block_seconds:g} s)",
        evidence=evidence,
        data=data,
    )


CHILD_CHECKS[NAME] = check_in_process


def run(settings: AuditSettings) -> Verdict:
    params = {"call_timeout": settings.call_timeout, "bound": settings.cancel_bound}
    verdict, _ = run_isolated(
        NAME, settings.target, params, python=settings.python, timeout=settings.child_timeout
    )
    return verdict
