"""Run an in-process check in a child with the probe preloaded (when it is built).

The same protocol as teardown_audit.isolated.run_isolated, plus LD_PRELOAD: the child's checks
then find the probe with `binding.probe()` and add the exact per-library verdicts; without the
probe they fall back to /proc counts. TEARDOWN_AUDIT_PROBE=0 turns the probe off.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from teardown_audit.isolated import child_env, isolated_argv, verdict_from_run
from teardown_audit.native.locate import probe_env
from teardown_audit.proc import RunResult, reproduce_command, run_bounded
from teardown_audit.verdict import Verdict


def run_isolated_probed(
    check: str, target: str, params: Mapping[str, Any], *, python: str, timeout: float
) -> tuple[Verdict, RunResult]:
    extra = probe_env()
    argv = isolated_argv(python, check, target, params)
    env = child_env(extra)
    result = run_bounded(argv, timeout=timeout, env=env)
    shown = {"PYTHONPATH": env["PYTHONPATH"], **extra}
    verdict = verdict_from_run(check, result, timeout)
    verdict.repro = verdict.repro or reproduce_command(argv, shown)
    verdict.elapsed = result.elapsed
    return verdict, result
