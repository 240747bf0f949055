"""Calls queued but not started when the object is dropped never run.

id: queued-calls-rejected
origin: bashkit PR 2009 protocol (a closing flag rejects queued-but-unstarted items)
correct: the queued call never starts
broken: the queued call starts during teardown, after the caller gave up on it
"""

from teardown_audit.checks import queued
from teardown_audit.scenario import broken, correct, target

verdict = queued.check_in_process(target(), {"call_timeout": 0.5, "bound": 5.0})
if not verdict.ok:
    broken(verdict.reason)
correct(verdict.reason)
