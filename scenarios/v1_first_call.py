"""The first call on a fresh object completes: dispatch never waits while attached.

id: v1-first-call
origin: TM-PY-030 V1 (rendezvous dispatch sent holding the GIL; the worker needed the GIL to
  create its loop before it could receive: a 6-hour CI hang)
correct: the first call returns its result
broken: the process hangs on the first call (the runner's bound turns it into a diagnosed hang)
"""

from teardown_audit.adapters import FAST
from teardown_audit.callbacks import ProbeCallbacks
from teardown_audit.scenario import broken, correct, target

adapter = target()
callbacks = ProbeCallbacks()
outcome = adapter.call(adapter.create(callbacks.fast, callbacks.slow, None), FAST)
if not outcome.ok:
    broken(f"the first call failed: {outcome.detail}")
correct("the first call on a fresh object returned")
