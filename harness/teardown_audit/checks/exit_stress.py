"""Check: interpreter exit with a live object is clean, many times over, in parallel.

Runs the target's "clean" and "abandoned" exit scripts N times each in bounded subprocesses
(workers = CPU count by default) and classifies every run: ok, nonzero exit, killed by a signal,
"Fatal Python error", hang (stacks captured before the kill) or warnings on stderr. Exit crashes
are races (bashkit's V3 crashed 1/10 to 6/30 runs), hence many runs and rates per class.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import Callable

from teardown_audit.adapters import EXIT_SCENARIOS, load_adapter
from teardown_audit.exit_runs import OK, ExitRun, rates, run_many
from teardown_audit.exit_scripts import write_exit_scripts
from teardown_audit.proc import reproduce_command
from teardown_audit.settings import AuditSettings
from teardown_audit.verdict import Verdict, failed, passed

NAME = "interpreter-exit-stress"
Progress = Callable[[int, int], None]


def interleaved_jobs(
    scripts: Mapping[str, str], runs: int, python: str, flags: Sequence[str] = ()
) -> list[tuple[str, list[str]]]:
    """clean, abandoned, clean, ...: both scenarios share the CPU the same way."""
    return [(label, [python, *flags, path]) for _ in range(runs) for label, path in scripts.items()]


def exit_verdict(
    name: str, runs: Sequence[ExitRun], scripts: Mapping[str, str], flags: Sequence[str] = ()
) -> Verdict:
    by_label: dict[str, list[ExitRun]] = {}
    for run in runs:
        by_label.setdefault(run.label, []).append(run)
    summary = "; ".join(f"{label}: {rates(rs)}" for label, rs in by_label.items())
    evidence = [f"{label} ({scripts[label]}): {rates(rs)}" for label, rs in by_label.items()]
    data = {
        label: {"runs": len(rs), "classes": {r.key: sum(x.key == r.key for x in rs) for r in rs}}
        for label, rs in by_label.items()
    }
    bad = [r for r in runs if r.outcome != OK]
    elapsed = max((r.result.elapsed for r in runs), default=0.0)
    if not bad:
        return passed(
            name, f"all {len(runs)} exits clean ({summary})", evidence=evidence, data=data
        )
    shown: set[tuple[str, str]] = set()
    for run in bad:
        if (run.label, run.key) in shown:
            continue
        shown.add((run.label, run.key))
        evidence.append(f"first {run.key} in {run.label}: {run.detail}")
        if run.result.hang is not None:
            evidence += ["  " + line for line in run.result.hang.format().splitlines()[:40]]
        else:
            evidence += ["  " + line for line in run.result.stderr.strip().splitlines()[-8:]]
    first = bad[0]
    argv = [*first.result.argv]
    repro = reproduce_command(argv, first.env_delta or None)
    if not flags:  # exit-stress runs the plain interpreter
        script = shlex.quote(scripts[first.label])
        evidence.append(
            f"reproduce many: teardown-audit exit-stress {script} -n {len(by_label[first.label])}"
        )
    return failed(name, summary, evidence=evidence, data=data, repro=repro, elapsed=elapsed)


def run(settings: AuditSettings, progress: Progress | None = None) -> Verdict:
    adapter = load_adapter(settings.target)  # preflight showed it loads
    scripts = write_exit_scripts(adapter)
    jobs = interleaved_jobs(scripts, settings.exit_runs, settings.python)
    runs = run_many(
        jobs,
        workers=settings.workers,
        timeout=settings.exit_timeout,
        run_env=settings.seeded_env,
        progress=progress,
    )
    return exit_verdict(NAME, runs, scripts)


__all__ = ["EXIT_SCENARIOS", "NAME", "exit_verdict", "interleaved_jobs", "run"]
