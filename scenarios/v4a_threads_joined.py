"""Every thread an object started is joined before its drop returns, without gc.collect().

id: v4a-threads-joined
origin: TM-PY-030 V4 (the hands-off fix: runtime shut down in the background, no joins)
correct: no thread growth over 5 create/call/drop cycles with the GC disabled
broken: threads outlive the drop (joined later, or only at a GC pass)
"""

from teardown_audit.checks import threads
from teardown_audit.scenario import broken, correct, target

verdict = threads.check_in_process(target(), {"cycles": 5})
if not verdict.ok:
    broken(verdict.reason)
correct(verdict.reason)
