"""Interpreter exit with a module-level object whose callback was abandoned.

id: v3-exit-abandoned
origin: TM-PY-030 V3, bashkit #2008 (the worker attached on its exit path while the interpreter
  finalized: SIGABRT/SIGSEGV in 1/10 to 6/30 runs; `Fatal Python error: PyGILState_Release`)
correct: exit status 0 and an empty stderr, every run (run it many times: it is a race)
broken: killed by a signal, a `Fatal Python error`, a hang, or warnings at exit
"""

import asyncio

from teardown_audit.adapters import FAST, SLOW
from teardown_audit.scenario import broken, target

# The callbacks' globals are a private namespace: an abandoned call's reference to its callback
# must not pin this module's globals, or the object outlives finalization and nothing is tested.
CALLBACKS = {"asyncio": asyncio}
exec(
    "def fast():\n    return 'ok'\n"
    "async def slow():\n    await asyncio.sleep(30)\n    return 'late'\n",
    CALLBACKS,
)
adapter = target()
TOOL = adapter.create(CALLBACKS["fast"], CALLBACKS["slow"], 0.05)
if not adapter.call(TOOL, FAST).ok:
    broken("the fast call failed")
if not adapter.call(TOOL, SLOW).timed_out:
    broken("the slow call did not time out: nothing was abandoned")
del CALLBACKS, adapter
# TOOL is left for Py_Finalize, with its callback still running on the target's thread.
