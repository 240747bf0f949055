"""Running a command under a sanitizer and turning its logs into a verdict.

Every process of the run (the command, its children, their children) inherits the preload and
the options, and writes its reports to its own file in `log_dir`: a report from an exit-script
grandchild counts as much as one from the command itself.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Optional

from teardown_audit.proc import RunResult, reproduce_command, run_bounded
from teardown_audit.sanitizers.build import Build
from teardown_audit.sanitizers.judge import judge
from teardown_audit.sanitizers.reports import Report, parse_log_dir, parse_sanitizer_text
from teardown_audit.sanitizers.tools import Tool, run_env, valgrind_argv
from teardown_audit.verdict import Verdict

HARNESS_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclass
class SanitizedRun:
    tool: str
    result: RunResult
    log_dir: str
    reports: list[Report]
    processes: Optional[int]  # processes that wrote a log (valgrind: one XML per process)
    repro: str


def prepare_log_dir(log_dir: str) -> str:
    log_dir = os.path.abspath(log_dir)
    shutil.rmtree(log_dir, ignore_errors=True)  # a report from a previous run is not this run's
    os.makedirs(os.path.join(log_dir, "text"))
    return log_dir


def run_under(
    tool: Tool,
    argv: Sequence[str],
    *,
    log_dir: str,
    timeout: float,
    build: Optional[Build] = None,
    suppressions: Optional[str] = None,
    cwd: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
    leaks: bool = True,
) -> SanitizedRun:
    """Run argv under `tool` (bounded, own process group) and parse every process's reports."""
    log_dir = prepare_log_dir(log_dir)
    child_env = run_env(tool, log_dir, suppressions, os.environ if env is None else env)
    # The instrumented build first, then the harness (the default workload imports it).
    path = [build.site] if build is not None else []
    path += [HARNESS_ROOT, *[p for p in child_env.get("PYTHONPATH", "").split(":") if p]]
    child_env["PYTHONPATH"] = ":".join(dict.fromkeys(path))
    prefix = valgrind_argv(tool, log_dir, suppressions, leaks) if tool.valgrind_tool else []
    full = [*prefix, *argv]
    delta = {k: v for k, v in child_env.items() if os.environ.get(k) != v}
    result = run_bounded(full, timeout=timeout, env=child_env, cwd=cwd)
    reports = parse_log_dir(log_dir)
    # gcc's libubsan, loaded as a dependency of the extension rather than preloaded, ignores
    # UBSAN_OPTIONS=log_path (measured, gcc 12): its reports go to the process's stderr. The
    # command's own stderr is parsed for them; a grandchild's UB report reaches us only if its
    # parent forwards its stderr (documented in specs/sanitizers.md).
    reports += [r for r in parse_sanitizer_text(result.stderr, "<stderr>") if r.tool == "ubsan"]
    # valgrind's XML lists every leak kind whatever --show-leak-kinds/--leak-check say
    # (measured, 3.19): only definite leaks are errors, and none when leaks are not checked.
    keep = ("Leak_DefinitelyLost",) if leaks else ()
    reports = [r for r in reports if not r.kind.startswith("Leak_") or r.kind in keep]
    processes = None
    if tool.valgrind_tool:
        processes = sum(1 for n in os.listdir(log_dir) if n.endswith(".xml"))
    return SanitizedRun(
        tool.name, result, log_dir, reports, processes, reproduce_command(full, delta)
    )


def command_status(run: SanitizedRun) -> tuple[bool, str]:
    """(ok, text) for the command itself, ignoring the sanitizer's own exit code."""
    result = run.result
    if result.timed_out:
        diagnosis = result.hang.diagnosis if result.hang is not None else ""
        return False, f"hang: killed after {result.elapsed:.0f} s {diagnosis}".strip()
    return result.returncode == 0, result.verdict


def verdict_of(check: str, run: SanitizedRun, ours: Sequence[str], started: float) -> Verdict:
    ok, status = command_status(run)
    if run.processes == 0:
        ok, status = False, f"{status}; valgrind wrote no XML log (did it start?)"
    verdict = judge(
        check,
        run.tool,
        run.reports,
        ours,
        command_ok=ok,
        command_status=status,
        processes=run.processes,
        output_tail=run.result.stdout[-3000:] + "\n" + run.result.stderr[-3000:],
    )
    verdict.repro = run.repro
    verdict.elapsed = time.monotonic() - started
    verdict.evidence.append(f"logs: {run.log_dir}")
    return verdict
