"""Running the regression scenarios of scenarios/ against a target, each in a bounded process.

Every scenario runs `runs` times (exit scenarios are races: run them many times). A run is
classified like an exit run (ok, nonzero exit, signal, fatal error, hang with diagnosis,
warnings on stderr); a scenario's own `BROKEN: ...` line is its diagnosis.
"""

from __future__ import annotations

import ast
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from teardown_audit.exit_runs import OK, ExitRun, rates, run_many
from teardown_audit.proc import reproduce_command
from teardown_audit.scenario import parse_header

# Longer than any scenario's own bounds (5 s cancellation, 10 s churn): beyond it, a hang.
SCENARIO_TIMEOUT = 30.0
# The same scripts, looked up from the working directory (a checkout) by default.
DEFAULT_DIR = "scenarios"


@dataclass(frozen=True)
class Scenario:
    path: str
    header: dict[str, str]

    @property
    def id(self) -> str:
        return self.header["id"]


@dataclass
class ScenarioResult:
    scenario: Scenario
    runs: list[ExitRun]
    repro: str

    @property
    def ok(self) -> bool:
        return all(r.outcome == OK for r in self.runs)

    @property
    def diagnosis(self) -> str:
        for run in self.runs:
            if run.outcome != OK:
                lines = (run.result.stdout + run.result.stderr).splitlines()
                said = [line[len("BROKEN: ") :] for line in lines if line.startswith("BROKEN: ")]
                return said[0] if said else f"{run.key}: {run.detail}"
        return ""


def discover(directory: str) -> list[Scenario]:
    """Every scenario of `directory`, by id; ValueError for a missing dir or a bad header."""
    if not os.path.isdir(directory):
        raise ValueError(f"no scenario directory {directory!r} (use --dir)")
    found = []
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".py"):
            continue
        path = os.path.join(directory, name)
        with open(path) as f:
            doc = ast.get_docstring(ast.parse(f.read(), path)) or ""
        try:
            found.append(Scenario(path, parse_header(doc)))
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
    return found


def select(scenarios: Sequence[Scenario], ids: Sequence[str] | None) -> list[Scenario]:
    if not ids:
        return list(scenarios)
    by_id = {s.id: s for s in scenarios}
    unknown = [i for i in ids if i not in by_id]
    if unknown:
        raise ValueError(f"unknown scenario {unknown[0]!r}; known: {', '.join(by_id)}")
    return [by_id[i] for i in ids]


def run_scenarios(
    scenarios: Sequence[Scenario],
    *,
    target: str,
    runs: int = 1,
    workers: int = 2,
    python: str = sys.executable,
    timeout: float = SCENARIO_TIMEOUT,
    env: dict[str, str] | None = None,
) -> list[ScenarioResult]:
    """Each scenario `runs` times; `env` is added to every run (a fault to inject, say)."""
    results = []
    for scenario in scenarios:
        argv = [python, "-X", "dev", scenario.path, "--target", target]
        jobs = [(scenario.id, argv) for _ in range(runs)]
        outcome = run_many(jobs, workers=workers, timeout=timeout, env_extra=env)
        results.append(ScenarioResult(scenario, outcome, reproduce_command(argv, env)))
    return results


def catalogue(scenarios: Sequence[Scenario]) -> str:
    """The markdown catalogue of specs/scenarios.md, from the scenarios' own headers."""
    rows = ["| id | file | origin | correct | broken |", "|---|---|---|---|---|"]
    for s in scenarios:
        h = s.header
        name = os.path.basename(s.path)
        rows.append(f"| `{h['id']}` | `{name}` | {h['origin']} | {h['correct']} | {h['broken']} |")
    return "\n".join(rows)


def table(results: Sequence[ScenarioResult]) -> str:
    rows = [("scenario", "verdict", "runs", "diagnosis")]
    for r in results:
        rows.append((r.scenario.id, "ok" if r.ok else "BROKEN", rates(r.runs), r.diagnosis))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = []
    for row in rows:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths)) + "  " + row[3])
    return "\n".join(lines)
