"""The last reference dropped on the object's own thread tears it down without a self-join.

id: v5-drop-on-own-thread
origin: TM-PY-030 V5 (a drop on a runtime worker blocked on joining its own runtime: a panic in
  Rust); bashkit hands off to a background shutdown
correct: every thread of the object is gone within 5 s
broken: the teardown joins the thread it runs on: threads stay, stuck on each other
"""

from teardown_audit.checks import own_thread_drop
from teardown_audit.scenario import broken, correct, target

verdict = own_thread_drop.check_in_process(target(), {"bound": 5.0, "call_timeout": 0.5})
if not verdict.ok:
    broken(verdict.reason)
correct(verdict.reason)
