"""`teardown-audit`: audit | exit-stress SCRIPT | churn.

Exit status: 0 every check passed (or skipped for a missing capability), 1 a check failed or
errored, 2 usage error or unusable target (one line on stderr), 130 interrupted.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any, Callable, NoReturn

from teardown_audit import killmatrix, scenarios
from teardown_audit.adapters import DEFAULT_TARGET, TargetError
from teardown_audit.audit import preflight, run_audit
from teardown_audit.checks import AUDIT_CHECKS, churn
from teardown_audit.checks.exit_stress import exit_verdict
from teardown_audit.exit_runs import kill_children, run_many
from teardown_audit.matrix import command as matrix_command
from teardown_audit.report import failure_details, summary_table, write_json, write_junit
from teardown_audit.sanitizers import cli as sanitize_cli
from teardown_audit.settings import AuditSettings
from teardown_audit.verdict import Verdict

PROG = "teardown-audit"
EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """Bad input: reported as one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not the usage block
        raise UsageError(message)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive finite number: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG, description="Audit Python native extensions for deterministic teardown."
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    audit = sub.add_parser("audit", help="run every check on a target")
    _add_target(audit)
    audit.add_argument("--json", metavar="FILE", help="write the verdicts as JSON")
    audit.add_argument("--junit", metavar="FILE", help="write the verdicts as JUnit XML")
    audit.add_argument("--quick", action="store_true", help="smaller sizes: a smoke test")
    audit.add_argument(
        "--check",
        action="append",
        choices=list(AUDIT_CHECKS),
        help="run only this check (repeatable)",
    )
    audit.add_argument("--exit-runs", type=positive_int, help="runs per exit scenario (default 10)")
    audit.add_argument(
        "--workers", type=positive_int, help="parallel exit runs (default: CPU count)"
    )
    audit.add_argument("--cycles", type=positive_int, help="drop cycles for threads and fds checks")
    audit.add_argument(
        "--hang-bound",
        type=positive_float,
        help="seconds after which a check's child or an exit run counts as hung (default 60/20)",
    )
    audit.add_argument(
        "--seed-env",
        metavar="NAME=TEMPLATE",
        help="per exit run variable with {seed} replaced by the run number, e.g. "
        "TEARDOWN_REF_CHAOS={seed}:100 (seeded timing chaos, reproducible per run)",
    )

    stress = sub.add_parser("exit-stress", help="run a script N times and classify each exit")
    stress.add_argument("script", help="a Python script that leaves native objects alive at exit")
    stress.add_argument("-n", "--runs", type=positive_int, default=20, help="runs (default 20)")
    stress.add_argument("--workers", type=positive_int, default=os.cpu_count() or 1)
    stress.add_argument(
        "--timeout", type=positive_float, default=20.0, help="hang bound per run (s)"
    )

    kill = sub.add_parser(
        "killmatrix", help="audit teardown_ref under every injected historical fault"
    )
    kill.add_argument("--fault", action="append", help="only this fault (repeatable; default: all)")
    kill.add_argument("--json", metavar="FILE", help="write every fault's verdicts as JSON")
    kill.add_argument(
        "--write-spec",
        metavar="PATH",
        help="replace the killmatrix section of PATH (specs/scenarios.md) with the table",
    )

    scen = sub.add_parser("scenarios", help="run the regression scenarios against a target")
    _add_target(scen)
    scen.add_argument("ids", nargs="*", metavar="ID", help="scenario ids (default: all)")
    scen.add_argument(
        "--dir", default=scenarios.DEFAULT_DIR, help="scenario directory (default ./scenarios)"
    )
    scen.add_argument("-n", "--runs", type=positive_int, default=1, help="runs per scenario")
    scen.add_argument("--list", action="store_true", help="print the catalogue (markdown) and exit")

    sanitize_cli.add_parser(sub)
    matrix_command.add_parser(sub)

    churn_p = sub.add_parser("churn", help="concurrent churn under the hang watchdog")
    _add_target(churn_p)
    churn_p.add_argument("--threads", type=positive_int, default=4)
    churn_p.add_argument("--iterations", type=positive_int, default=10)
    churn_p.add_argument("--repeats", type=positive_int, default=1)
    churn_p.add_argument("--timeout", type=positive_float, default=60.0, help="hang bound (s)")
    return parser


def _add_target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--target",
        default=DEFAULT_TARGET,
        help="teardown_ref (default), bashkit, module:object, or path/to/adapter.py[:object]",
    )


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _exit_progress(label: str) -> Callable[[int, int], None]:
    def progress(done: int, total: int) -> None:
        # Only a few lines: at 25 %, 50 %, 75 %, 100 % of the runs.
        if done == total or done * 4 // total != (done - 1) * 4 // total:
            say(f"    {label}: {done}/{total} runs")

    return progress


def cmd_audit(args: argparse.Namespace) -> int:
    settings = AuditSettings(target=args.target)
    if args.quick:
        settings = settings.quick()
    overrides: dict[str, Any] = {}
    if args.exit_runs:
        overrides["exit_runs"] = args.exit_runs
    if args.workers:
        overrides["workers"] = args.workers
    if args.cycles:
        overrides["thread_cycles"] = overrides["fd_cycles"] = args.cycles
    if args.hang_bound:
        overrides["child_timeout"] = overrides["exit_timeout"] = args.hang_bound
    if args.seed_env:
        overrides["seed_env"] = args.seed_env
    try:
        settings = dataclasses.replace(settings, **overrides)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    start = time.monotonic()
    name = preflight(settings)
    say(f"{PROG}: auditing {name} ({settings.target}) with {sys.executable}")

    def on_start(check: str, index: int, total: int) -> None:
        say(f"[{index}/{total}] {check} ...")

    def on_done(verdict: Verdict, index: int, total: int) -> None:
        say(f"[{index}/{total}] {verdict.check}: {verdict.status} ({verdict.elapsed:.1f} s)")

    verdicts = run_audit(
        settings, args.check, on_start=on_start, on_done=on_done, progress=_exit_progress("exits")
    )
    elapsed = time.monotonic() - start
    return _finish(verdicts, name, elapsed, args.json, args.junit)


def _finish(
    verdicts: Sequence[Verdict],
    name: str,
    elapsed: float,
    json_path: str | None,
    junit_path: str | None,
) -> int:
    details = failure_details(verdicts)
    if details:
        print(details + "\n")
    print(summary_table(verdicts, name, elapsed))
    if json_path:
        write_json(json_path, verdicts, name, elapsed)
    if junit_path:
        write_junit(junit_path, verdicts, name, elapsed)
    return EXIT_OK if all(v.ok for v in verdicts) else EXIT_FAIL


def cmd_exit_stress(args: argparse.Namespace) -> int:
    script = os.path.abspath(args.script)
    if not os.path.isfile(script):
        raise UsageError(f"script not found: {args.script}")
    start = time.monotonic()
    jobs = [(os.path.basename(script), [sys.executable, script]) for _ in range(args.runs)]
    say(f"{PROG}: {args.runs} runs of {script}, {args.workers} at a time")
    runs = run_many(
        jobs, workers=args.workers, timeout=args.timeout, progress=_exit_progress("exits")
    )
    verdict = exit_verdict("exit-stress", runs, {os.path.basename(script): script})
    verdict.elapsed = time.monotonic() - start
    return _finish([verdict], script, verdict.elapsed, None, None)


def cmd_churn(args: argparse.Namespace) -> int:
    settings = AuditSettings(
        target=args.target,
        churn_threads=args.threads,
        churn_iterations=args.iterations,
        churn_repeats=args.repeats,
        child_timeout=args.timeout,
    )
    start = time.monotonic()
    name = preflight(settings)
    say(
        f"{PROG}: churn on {name}: {args.threads} threads x {args.iterations} iterations"
        f" x {args.repeats}"
    )
    verdict = churn.run(settings)
    return _finish([verdict], name, time.monotonic() - start, None, None)


def cmd_killmatrix(args: argparse.Namespace) -> int:
    try:
        cases = killmatrix.select_cases(args.fault)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.write_spec and not os.path.isfile(args.write_spec):
        raise UsageError(f"no such file: {args.write_spec}")
    say(f"{PROG}: kill matrix over {len(cases)} builds of teardown_ref with {sys.executable}")
    start = time.monotonic()

    def on_done(result: killmatrix.FaultResult) -> None:
        state = "caught" if result.caught else "NOT CAUGHT"
        if result.not_applicable:
            state = f"not applicable ({result.not_applicable})"
        say(f"  {result.case.fault}: {state} ({result.elapsed:.1f} s)")

    matrix = killmatrix.run_matrix(cases, on_done=on_done)
    elapsed = time.monotonic() - start
    print(killmatrix.verdict_table(matrix))
    print()
    print(killmatrix.timing_table(matrix))
    print()
    print("\n".join(killmatrix.diagnosis_lines(matrix)))
    print(f"\n{len(cases)} builds in {elapsed:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                [
                    {
                        "fault": r.case.fault,
                        "caught": r.caught,
                        "verdicts": r.verdicts,
                        "elapsed": r.elapsed,
                        "repro": r.repro,
                        "problem": r.problem,
                        "not_applicable": r.not_applicable,
                    }
                    for r in matrix.results
                ],
                f,
                indent=2,
            )
    if args.write_spec:
        header = f"Generated by `make killmatrix` ({sys.version.split()[0]}, {elapsed:.0f} s)."
        killmatrix.write_into(args.write_spec, matrix, header)
    return EXIT_OK if matrix.ok else EXIT_FAIL


def cmd_scenarios(args: argparse.Namespace) -> int:
    try:
        chosen = scenarios.select(scenarios.discover(args.dir), args.ids)
    except (ValueError, SyntaxError) as exc:
        raise UsageError(str(exc)) from None
    if args.list:
        print(scenarios.catalogue(chosen))
        return EXIT_OK
    preflight(AuditSettings(target=args.target))
    say(f"{PROG}: {len(chosen)} scenarios x {args.runs} runs on {args.target}")
    results = scenarios.run_scenarios(chosen, target=args.target, runs=args.runs)
    print(scenarios.table(results))
    for r in results:
        if not r.ok:
            print(f"  reproduce {r.scenario.id}: {r.repro}")
    return EXIT_OK if all(r.ok for r in results) else EXIT_FAIL


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "audit": cmd_audit,
    "scenarios": cmd_scenarios,
    "sanitize": sanitize_cli.main,
    "matrix": matrix_command.main,
    "killmatrix": cmd_killmatrix,
    "exit-stress": cmd_exit_stress,
    "churn": cmd_churn,
}


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    # SIGTERM (a CI job being cancelled) gets the same cleanup as Ctrl-C: no orphaned children.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except (UsageError, TargetError, ValueError) as exc:
        say(f"{PROG}: error: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        kill_children()  # run_bounded already reaps its own child; this catches the parallel ones
        say(f"{PROG}: interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_FAIL
