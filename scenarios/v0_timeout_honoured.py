"""A call with a timeout returns at its timeout, not when the callback ends.

id: v0-timeout-honoured
origin: TM-PY-030 V0, bashkit <= 0.9.0 (timeout_seconds ignored for async callbacks)
correct: the call returns a timeout well before the 10 s callback ends
broken: the call returns only when the callback finishes, with no timeout
"""

import time

from teardown_audit.adapters import SLOW
from teardown_audit.callbacks import ProbeCallbacks
from teardown_audit.scenario import broken, correct, target

adapter = target()
callbacks = ProbeCallbacks(hold_seconds=10.0)
tool = adapter.create(callbacks.fast, callbacks.slow, 0.05)
start = time.monotonic()
outcome = adapter.call(tool, SLOW)
took = time.monotonic() - start
if not outcome.timed_out or callbacks.finished.is_set():
    broken(f"no timeout: the call returned after {took:.2f} s ({outcome.detail})")
correct(f"timed out after {took:.3f} s; the callback was abandoned, still running")
