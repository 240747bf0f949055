"""The kill matrix on one interpreter (`teardown-audit killmatrix --json`): one row per fault.

A row passes when the fault was caught by its check with a diagnosis naming the cause (for
`none`, the correct build: every check passed) — the same verdicts are expected on every
interpreter, so the rows line up across the table's columns.
"""

from __future__ import annotations

import json
import os
import shlex
import time

from teardown_audit.matrix.steps import StepContext, run_step, why
from teardown_audit.verdict import Verdict, errored, failed, passed, skipped

ROW_PREFIX = "kill:"


def killmatrix_step(ctx: StepContext) -> list[Verdict]:
    start = time.monotonic()
    report = os.path.join(ctx.reports, "killmatrix.json")
    if os.path.exists(report):
        os.unlink(report)  # a stale report must not pass for this run's
    argv = [os.path.join(ctx.venv, "bin", "teardown-audit"), "killmatrix", "--json", report]
    result = run_step(ctx, "killmatrix", argv, cwd=ctx.src)
    log = [f"log: {ctx.log('killmatrix')}"]
    try:
        with open(report) as f:
            rows = [_row(raw) for raw in json.load(f)]
    except (OSError, ValueError, KeyError, TypeError):
        rows = []
    if not rows or result.returncode not in (0, 1):
        reason = "no kill-matrix report: " + why(result)
        elapsed = time.monotonic() - start
        return [
            errored("killmatrix", reason, evidence=log, repro=shlex.join(argv), elapsed=elapsed)
        ]
    if result.returncode == 1 and all(v.ok for v in rows):
        rows.append(errored("killmatrix", "killmatrix exited 1 but every fault was caught"))
    for v in rows:
        if not v.ok:
            v.evidence = log + v.evidence
    return rows


def _row(raw: dict[str, object]) -> Verdict:
    name = ROW_PREFIX + str(raw["fault"])
    elapsed = float(raw["elapsed"])  # type: ignore[arg-type]
    repro = str(raw.get("repro") or "") or None
    if raw.get("not_applicable"):
        return skipped(name, f"not applicable: {raw['not_applicable']}", elapsed=elapsed)
    if raw.get("problem"):
        return errored(name, f"audit did not run: {raw['problem']}", repro=repro, elapsed=elapsed)
    verdicts = raw["verdicts"]
    assert isinstance(verdicts, dict)
    statuses = ", ".join(f"{check} {v['status']}" for check, v in verdicts.items())
    if raw["caught"]:
        return passed(name, "caught" if raw["fault"] != "none" else "clean", elapsed=elapsed)
    reason = "correct build failed" if raw["fault"] == "none" else "NOT caught"
    return failed(name, f"{reason}: {statuses}", repro=repro, elapsed=elapsed)
