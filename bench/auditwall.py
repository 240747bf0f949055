"""Wall time of the audit (`make audit`'s command) per interpreter.

`make audit` is its set-up (venv, build: done once, then up to date) plus `teardown-audit audit`.
This times the latter, in each interpreter's `.venv/bench-pyX.Y` that `make bench` prepared
(never the default `.venv/pyX.Y`, which other targets own), under a bound.
"""

from __future__ import annotations

import os
from typing import Any

from teardown_audit.proc import run_bounded

AUDIT_BOUND = 300.0


def measure(pythons: list[str]) -> list[dict[str, Any]]:
    rows = []
    for python in pythons:
        script = os.path.join(os.path.dirname(python), "teardown-audit")
        version = run_bounded([python, "-c", "import sys; print(sys.version.split()[0])"],
                              timeout=30, capture_stacks=False).stdout.strip()  # fmt: skip
        result = run_bounded([script, "audit"], timeout=AUDIT_BOUND, capture_stacks=False)
        summary = (result.stdout.strip().splitlines() or [""])[-1]
        rows.append(
            {
                "python": version,
                "venv": os.path.dirname(os.path.dirname(python)),
                "wall_s": result.elapsed,
                "status": result.verdict,
                "summary": summary,
            }
        )
    return rows
