"""Concurrent churn: threads creating, calling, timing out and dropping objects at once.

id: churn
origin: bashkit PR 2009 adversarial run (8 threads x 40 mixed iterations, looped: 0 deadlocks)
correct: every operation completes and no thread of the target is left over
broken: a deadlock (the runner's bound diagnoses it), an error, or leftover threads
"""

from teardown_audit.checks import churn
from teardown_audit.scenario import broken, correct, target
from teardown_audit.settings import AuditSettings

verdict = churn.churn_in_process(target(), churn.churn_params(AuditSettings()))
if not verdict.ok:
    broken(verdict.reason)
correct(verdict.reason)
