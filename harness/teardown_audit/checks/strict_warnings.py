"""Check: the scenarios stay silent under `-X dev -W error::ResourceWarning`.

An unclosed event loop or socket left to a GC pass warns only in dev mode; with the warning turned
into an error inside __del__, CPython prints "Exception ignored in: ...". Any ResourceWarning,
"Exception ignored", crash or nonzero exit in the in-process scenario (cycles, abandon, drop, then
a GC pass to flush late finalizers) or in the exit scripts fails the check.
"""

from __future__ import annotations

import gc
from collections.abc import Mapping
from typing import Any, Callable

from teardown_audit.adapters import Adapter, load_adapter
from teardown_audit.callbacks import ProbeCallbacks
from teardown_audit.checks.cancellation import check_in_process as cancellation_in_process
from teardown_audit.checks.cycles import one_cycle
from teardown_audit.checks.exit_stress import interleaved_jobs
from teardown_audit.exit_runs import OK, WARNING_PATTERNS, ExitRun, rates, run_many
from teardown_audit.exit_scripts import write_exit_scripts
from teardown_audit.isolated import CHILD_CHECKS, phase, run_isolated
from teardown_audit.proc import reproduce_command
from teardown_audit.settings import AuditSettings
from teardown_audit.verdict import Verdict, failed, passed

NAME = "strict-warnings"
STRICT_FLAGS = ("-X", "dev", "-W", "error::ResourceWarning")
SCENARIO = "strict-scenario"


def scenario_in_process(adapter: Adapter, params: Mapping[str, Any]) -> Verdict:
    """The in-process scenario; the parent judges this child by its stderr."""
    callbacks = ProbeCallbacks()
    for _ in range(3):
        one_cycle(adapter, callbacks, collect=False)
    verdict = cancellation_in_process(adapter, params)
    phase("a GC pass after the scenario")
    gc.collect()
    return verdict


CHILD_CHECKS[SCENARIO] = scenario_in_process


def _warning_lines(stderr: str) -> list[str]:
    """Warning lines, the telling ones first: an unclosed event loop names the cause, while the
    socket warnings it drags along come first or not depending on the Python version."""
    lines = [
        line.strip() for line in stderr.splitlines() if any(p in line for p in WARNING_PATTERNS)
    ]
    return sorted(lines, key=lambda line: "event loop" not in line and "EventLoop" not in line)


def run(settings: AuditSettings, progress: Callable[[int, int], None] | None = None) -> Verdict:
    params = {"bound": settings.cancel_bound, "call_timeout": settings.call_timeout}
    inner, result = run_isolated(
        SCENARIO,
        settings.target,
        params,
        python=settings.python,
        timeout=settings.child_timeout,
        flags=STRICT_FLAGS,
    )
    scripts = write_exit_scripts(load_adapter(settings.target))
    jobs = interleaved_jobs(scripts, settings.strict_runs, settings.python, STRICT_FLAGS)
    exits = run_many(
        jobs, workers=settings.workers, timeout=settings.exit_timeout, progress=progress
    )
    return strict_verdict(inner, result.stderr, exits, settings)


def strict_verdict(
    inner: Verdict, inner_stderr: str, exits: list[ExitRun], settings: AuditSettings
) -> Verdict:
    flags = " ".join(STRICT_FLAGS)
    evidence = [f"in-process scenario under {flags}: {inner.status} ({inner.reason})"]
    warnings = _warning_lines(inner_stderr)
    evidence += ["  " + w for w in warnings[:5]]
    evidence.append(f"exit scripts under {flags}: {rates(exits)}")
    bad_exits = [r for r in exits if r.outcome != OK]
    for run in bad_exits[:3]:
        evidence.append(f"  {run.label}: {run.key}: {run.detail}")
    data = {"scenario_warnings": len(warnings), "exit_failures": len(bad_exits)}
    if warnings:
        return failed(
            NAME,
            f"in-process scenario under {flags}: {warnings[0]}",
            evidence=evidence,
            data=data,
            repro=inner.repro,
        )
    if bad_exits:
        first = bad_exits[0]
        return failed(
            NAME,
            f"exit script {first.label!r} under {flags}: {first.key}: {first.detail}",
            evidence=evidence,
            data=data,
            repro=reproduce_command(first.result.argv),
        )
    if inner.data.get("process"):  # the scenario itself hung, crashed or said nothing
        return failed(
            NAME,
            f"in-process scenario under {flags}: {inner.reason}",
            evidence=evidence,
            repro=inner.repro,
        )
    return passed(
        NAME,
        f"no ResourceWarning or 'Exception ignored' under {flags} "
        f"(in-process scenario and {len(exits)} exits)",
        evidence=evidence,
        data=data,
    )
