"""Time to verdict for each kill-matrix fault: how long the catching check takes to fail.

Each fault runs `killmatrix.run_case(case, checks=[its catching check])`: one bounded audit
process with TEARDOWN_REF_FAULT set. `check_s` is the verdict's own `elapsed` (the check's
child, including the hang bound and the stack capture for a deadlock); `process_s` adds the
audit's start-up and preflight. The deadlocks must be diagnosed within the hang bound + 3 s.
"""

from __future__ import annotations

from typing import Any

from teardown_audit import killmatrix

DEADLOCKS = ("rendezvous_dispatch", "join_holding_gil", "join_self")
# --quick: the deadlocks (the figure with a target) and one fast fault for contrast.
QUICK = (*DEADLOCKS, "ignore_timeout")
SLACK = 3.0  # the target: hang bound + 3 s


def measure(*, quick: bool) -> dict[str, Any]:
    cases = [c for c in killmatrix.CASES if c.expect and (not quick or c.fault in QUICK)]
    rows = []
    for case in cases:
        result = killmatrix.run_case(case, checks=[case.expect])
        verdict = result.verdicts.get(case.expect, {})
        rows.append(
            {
                "fault": case.fault,
                "check": case.expect,
                "deadlock": case.fault in DEADLOCKS,
                "caught": result.caught,
                "check_s": verdict.get("elapsed"),
                "process_s": result.elapsed,
                "reason": result.problem or verdict.get("reason", ""),
            }
        )
    return {
        "hang_bound_s": killmatrix.HANG_BOUND,
        "target_s": killmatrix.HANG_BOUND + SLACK,
        "quick": quick,
        "faults": rows,
    }
