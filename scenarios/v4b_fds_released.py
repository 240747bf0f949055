"""Every fd an object opened (its asyncio loop's) is closed before its drop returns.

id: v4b-fds-released
origin: TM-PY-030 V4, bashkit #2008 (the loop was left to BaseEventLoop.__del__: fds held until a
  GC pass, `ResourceWarning: unclosed event loop` under -X dev)
correct: no fd growth over 20 create/call/drop cycles with the GC disabled
broken: +3 fds per cycle (1 eventpoll, 2 socket), freed only by a GC pass or never
"""

from teardown_audit.checks import fds
from teardown_audit.scenario import broken, correct, target

verdict = fds.check_in_process(target(), {"cycles": 20})
if not verdict.ok:
    broken(verdict.reason)
correct(verdict.reason)
