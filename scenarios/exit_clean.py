"""Interpreter exit with a module-level object that finished its work.

id: exit-clean
origin: TM-PY-030 V3 test matrix (bashkit PR 2009: 10 subprocess exits, clean)
correct: exit status 0 and an empty stderr, every run
broken: killed by a signal, a `Fatal Python error`, a hang, or warnings at exit
"""

from teardown_audit.adapters import FAST
from teardown_audit.callbacks import ProbeCallbacks
from teardown_audit.scenario import broken, target

CALLBACKS = ProbeCallbacks()
adapter = target()
TOOL = adapter.create(CALLBACKS.fast, CALLBACKS.slow, None)
if not adapter.call(TOOL, FAST).ok:
    broken("the fast call failed")
