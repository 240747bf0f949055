"""The Python callbacks the harness hands to a target: one fast, one long that records cancellation.

The harness owns their bodies so it can observe from the outside what the target did with them:
whether the long one started, was cancelled (saw CancelledError), or ran to completion.
"""

from __future__ import annotations

import asyncio
import threading

FAST_RESULT = "ok"


class ProbeCallbacks:
    """`fast()` returns at once; `await slow()` sleeps `hold_seconds` unless cancelled."""

    def __init__(self, hold_seconds: float = 10.0) -> None:
        self.hold_seconds = hold_seconds
        self.started = threading.Event()
        self.cancelled = threading.Event()  # CancelledError was raised inside slow()
        self.finished = threading.Event()  # slow() ran to the end: nobody cancelled it
        self.fast_calls = 0

    def fast(self) -> str:
        self.fast_calls += 1
        return FAST_RESULT

    async def slow(self) -> str:
        self.started.set()
        try:
            await asyncio.sleep(self.hold_seconds)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        self.finished.set()
        return "late"
