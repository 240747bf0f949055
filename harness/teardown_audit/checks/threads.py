"""Check: the target's threads are joined before the drop returns.

Churn create → exercise → drop, count live native threads (/proc/self/task) after every drop,
once with automatic GC off and once with gc.collect() after each drop. One-directional: a count
below the baseline (an unrelated pool reaping an idle thread) is fine, any growth fails. Exact
mode: when the target exposes counters (teardown_ref.stats()), they must be back to their
baseline after every drop. With the probe preloaded (teardown_audit.native), the exact check:
every thread the target's own library (and its lineage) created in a cycle was joined before
that cycle's drop returned, immune to other libraries' pools.
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
from teardown_audit.probes import ThreadInfo, live_threads
from teardown_audit.settings import AuditSettings
from teardown_audit.verdict import Verdict, errored, failed, passed

NAME = "threads-joined-on-drop"


@dataclass
class ThreadRun:
    collect: bool
    baseline: list[ThreadInfo]
    deltas: list[int]  # live threads after each drop minus baseline
    extra: list[ThreadInfo]  # threads alive after the last drop that were not in the baseline
    counter_drift: dict[str, list[int]]  # counter name → value minus baseline after each drop
    exact: Accounting | None = None  # per-library windows when the probe is loaded

    @property
    def grew(self) -> bool:
        return any(d > 0 for d in self.deltas)

    @property
    def counters_drifted(self) -> bool:
        return any(any(v != 0 for v in values) for values in self.counter_drift.values())


def measure_threads(adapter: Adapter, cycles: int, collect: bool) -> ThreadRun:
    exact = accounting_for(adapter)

    def probe() -> tuple[list[ThreadInfo], Mapping[str, int] | None]:
        if exact is not None:
            exact.boundary()  # closes the cycle that just dropped, opens the next
        return live_threads(), adapter.counters()

    (base_threads, base_counters), after = measure_cycles(adapter, cycles, collect, probe)
    deltas = [len(threads) - len(base_threads) for threads, _ in after]
    base_tids = {t.tid for t in base_threads}
    extra = [t for t in after[-1][0] if t.tid not in base_tids]
    drift: dict[str, list[int]] = {}
    if base_counters is not None:
        for key, start in base_counters.items():
            drift[key] = [(counters or {}).get(key, start) - start for _, counters in after]
    return ThreadRun(collect, base_threads, deltas, extra, drift, exact)


def describe_growth(run: ThreadRun) -> str:
    """'+1 thread per cycle' for a steady leak, otherwise the worst growth seen."""
    deltas, n = run.deltas, len(run.deltas)
    if n > 1 and deltas[-1] > 0 and deltas[-1] % n == 0:
        step = deltas[-1] // n
        if deltas == [step * (i + 1) for i in range(n)]:
            return f"+{step} thread{'s' if step > 1 else ''} per cycle"
    worst = max(deltas)
    if deltas[-1] > 0 and len(set(deltas)) == 1:
        return f"+{worst} thread{'s' if worst > 1 else ''} alive after every drop"
    return f"up to +{worst} thread{'s' if worst > 1 else ''} after a drop"


def describe_drift(drift: Mapping[str, list[int]]) -> str:
    parts = []
    for key, values in sorted(drift.items()):
        if any(values):
            n = len(values)
            steady = values[-1] != 0 and values == [values[-1] * (i + 1) // n for i in range(n)]
            parts.append(
                f"{key} {values[-1] // n:+d} per cycle" if steady else f"{key} {values[-1]:+d}"
            )
    return ", ".join(parts)


def threads_verdict(no_gc: ThreadRun, with_gc: ThreadRun, cycles: int) -> Verdict:
    evidence = []
    for run in (no_gc, with_gc):
        evidence.append(
            f"{gc_label(run.collect)}: baseline {len(run.baseline)} threads, "
            f"after each drop {[len(run.baseline) + d for d in run.deltas]}"
        )
        if run.extra:
            evidence.append("  new threads: " + ", ".join(t.describe() for t in run.extra[:6]))
        if run.counter_drift:
            evidence.append(f"  counters after each drop minus baseline: {run.counter_drift}")
    exact = "exact mode: counters back to baseline after every drop"
    if not no_gc.counter_drift:
        exact = "exact mode unavailable: the target exposes no counters"
    data = {
        "cycles": cycles,
        "gc_needed": no_gc.grew and not with_gc.grew,
        "deltas_without_gc": no_gc.deltas,
        "deltas_with_gc": with_gc.deltas,
        "counter_drift_without_gc": no_gc.counter_drift,
        "exact_mode": bool(no_gc.counter_drift),
    }
    probed = [run.exact for run in (no_gc, with_gc) if run.exact is not None]
    for acct in probed:
        evidence += acct.evidence()
        data[f"probe_{gc_label(acct is with_gc.exact).replace(' ', '_')}"] = acct.data()
    for run in (no_gc, with_gc):
        reason = run.exact.thread_reason() if run.exact is not None else None
        if reason is not None:
            both = no_gc.exact is not None and with_gc.exact is not None
            other = with_gc if run is no_gc else no_gc
            gc_note = gc_label(run.collect)
            if both and other.exact is not None and other.exact.thread_reason():
                gc_note = "with and without gc.collect()"
            return failed(NAME, f"{reason} ({gc_note})", evidence=evidence, data=data)
    if probed:
        exact += (
            f"; exact (probe): every thread of {probed[0].name} joined before each drop returned"
        )
    names = ", ".join(sorted({f"'{t.name}'" for t in (no_gc.extra or with_gc.extra)}))
    named = f" (new: {names})" if names else ""
    if no_gc.grew and with_gc.grew:
        return failed(
            NAME,
            f"{describe_growth(no_gc)} after drop, with and without gc.collect(){named}: "
            "threads not joined",
            evidence=evidence,
            data=data,
        )
    if no_gc.grew:
        return failed(
            NAME,
            f"{describe_growth(no_gc)} without gc.collect(), none with it{named}: threads joined "
            "only at a GC pass (the object outlives its drop, e.g. in a reference cycle)",
            evidence=evidence,
            data=data,
        )
    if with_gc.grew:
        return failed(
            NAME,
            f"{describe_growth(with_gc)} with gc.collect(){named}: threads not joined",
            evidence=evidence,
            data=data,
        )
    if no_gc.counters_drifted or with_gc.counters_drifted:
        run = no_gc if no_gc.counters_drifted else with_gc
        return failed(
            NAME,
            "exact mode: counters not back to baseline after drop "
            f"({describe_drift(run.counter_drift)}) "
            f"{gc_label(run.collect)}, though /proc/self/task did not grow",
            evidence=evidence,
            data=data,
        )
    return passed(
        NAME,
        f"no thread growth over {cycles} drops without gc.collect() (gc not needed); {exact}",
        evidence=evidence,
        data=data,
    )


def check_in_process(adapter: Adapter, params: Mapping[str, Any]) -> Verdict:
    cycles = int(params.get("cycles", 5))
    try:
        no_gc = measure_threads(adapter, cycles, collect=False)
        with_gc = measure_threads(adapter, cycles, collect=True)
    except ExerciseFailed as exc:
        return errored(NAME, f"cannot exercise the target: {exc}")
    return threads_verdict(no_gc, with_gc, cycles)


CHILD_CHECKS[NAME] = check_in_process


def run(settings: AuditSettings) -> Verdict:
    verdict, _ = run_isolated_probed(
        NAME,
        settings.target,
        {"cycles": settings.thread_cycles},
        python=settings.python,
        timeout=settings.child_timeout,
    )
    return verdict
