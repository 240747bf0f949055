"""Dropping an object with an abandoned callback cancels it promptly and cannot deadlock.

id: v2-drop-with-abandoned-callback
origin: TM-PY-030 V2, bashkit #2007 (dealloc joined the pool holding the GIL; the abandoned
  callback's job needed the GIL to finish: the process froze)
correct: the drop returns within 5 s and the callback observes CancelledError
broken: the drop hangs (GIL deadlock), waits for the callback to finish, or leaves it running
"""

from teardown_audit.checks import cancellation
from teardown_audit.scenario import broken, correct, target

# The callback would sleep 3 s: a drop that waits for it instead of cancelling is named as such.
params = {"bound": 5.0, "call_timeout": 0.5, "hold_seconds": 3.0}
verdict = cancellation.check_in_process(target(), params)
if not verdict.ok:
    broken(verdict.reason)
correct(verdict.reason)
