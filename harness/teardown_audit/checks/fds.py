"""Check: the target's fds (event loops, eventfds, pipes, files) are closed before the drop returns.

Same churn as the threads check, probing /proc/self/fd after every drop. The evidence carries the
classified diff, e.g. "+3 fds per cycle: 1 eventpoll, 2 socket — an asyncio loop not closed".
With the probe preloaded (teardown_audit.native), the exact check: every fd the target's library
lineage opened in a cycle was closed before that cycle's drop returned, whoever else opens fds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from teardown_audit.adapters import Adapter
from teardown_audit.checks.cycles import ExerciseFailed, gc_label, measure_cycles
from teardown_audit.isolated import CHILD_CHECKS
from teardown_audit.native.exact import Accounting, accounting_for
from teardown_audit.native.isolated import run_isolated_probed
from teardown_audit.probes import FdDiff, FdSnapshot, fd_diff, fd_snapshot
from teardown_audit.settings import AuditSettings
from teardown_audit.verdict import Verdict, errored, failed, passed

NAME = "fds-released-on-drop"


@dataclass
class FdRun:
    collect: bool
    baseline: FdSnapshot
    counts: list[int]  # open fds after each drop
    diff: FdDiff  # baseline → after the last drop
    exact: Accounting | None = None  # per-library windows when the probe is loaded

    @property
    def grew(self) -> bool:
        return any(c > len(self.baseline) for c in self.counts)


def measure_fds(adapter: Adapter, cycles: int, collect: bool) -> FdRun:
    exact = accounting_for(adapter)

    def probe() -> FdSnapshot:
        if exact is not None:
            exact.boundary()  # closes the cycle that just dropped, opens the next
        return fd_snapshot()

    baseline, after = measure_cycles(adapter, cycles, collect, probe)
    diff = fd_diff(baseline, after[-1], cycles)
    return FdRun(collect, baseline, [len(s) for s in after], diff, exact)


def fds_verdict(no_gc: FdRun, with_gc: FdRun, cycles: int) -> Verdict:
    evidence = []
    for run in (no_gc, with_gc):
        evidence.append(
            f"{gc_label(run.collect)}: baseline {len(run.baseline)} fds, after each drop "
            f"{run.counts}; {run.diff.summary()}"
        )
        for fd in run.diff.opened[:8]:
            evidence.append(f"  +fd {fd.fd} {fd.kind}: {fd.target}")
    data = {
        "cycles": cycles,
        "gc_needed": no_gc.grew and not with_gc.grew,
        "growth_without_gc": no_gc.diff.by_kind,
        "growth_with_gc": with_gc.diff.by_kind,
    }
    probed = [run.exact for run in (no_gc, with_gc) if run.exact is not None]
    for run in (no_gc, with_gc):
        if run.exact is not None:
            evidence += run.exact.evidence()
            data[f"probe_{gc_label(run.collect).replace(' ', '_')}"] = run.exact.data()
    exact = [run.exact.fd_reason() if run.exact is not None else None for run in (no_gc, with_gc)]
    growth = _growth_reason(no_gc, with_gc)
    if exact[0] or exact[1]:
        # The probe names the fds and their library; the /proc diff names the likely cause.
        which = "with and without gc.collect()" if all(exact) else gc_label(bool(exact[1]))
        reason = f"{exact[0] or exact[1]} ({which})" + (f"; {growth}" if growth else "")
        return failed(NAME, reason, evidence=evidence, data=data)
    if growth:
        return failed(NAME, growth, evidence=evidence, data=data)
    probe = ""
    if probed:
        probe = f"; exact (probe): every fd of {probed[0].name} closed before each drop returned"
    return passed(
        NAME,
        f"no fd growth over {cycles} drops without gc.collect() (gc not needed){probe}",
        evidence=evidence,
        data=data,
    )


def _growth_reason(no_gc: FdRun, with_gc: FdRun) -> str:
    """What /proc/self/fd says, classified ("" when it did not grow)."""
    if no_gc.grew and with_gc.grew:
        return f"{with_gc.diff.summary()} (with and without gc.collect())"
    if no_gc.grew:
        return (
            f"{no_gc.diff.summary()} without gc.collect(), none with it: fds freed only at a GC "
            "pass, not by the drop"
        )
    if with_gc.grew:
        return f"{with_gc.diff.summary()} with gc.collect()"
    return ""


def check_in_process(adapter: Adapter, params: Mapping[str, Any]) -> Verdict:
    cycles = int(params.get("cycles", 20))
    try:
        no_gc = measure_fds(adapter, cycles, collect=False)
        with_gc = measure_fds(adapter, cycles, collect=True)
    except ExerciseFailed as exc:
        return errored(NAME, f"cannot exercise the target: {exc}")
    return fds_verdict(no_gc, with_gc, cycles)


CHILD_CHECKS[NAME] = check_in_process


def run(settings: AuditSettings) -> Verdict:
    verdict, _ = run_isolated_probed(
        NAME,
        settings.target,
        {"cycles": settings.fd_cycles},
        python=settings.python,
        timeout=settings.child_timeout,
    )
    return verdict
