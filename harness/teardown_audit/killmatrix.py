"""The kill matrix: every historical teardown bug, injected into teardown_ref, must be caught.

For the correct build and each fault of `teardown_ref.FAULTS`, one full audit runs in its own
bounded process with `TEARDOWN_REF_FAULT` set (inherited by every child of the audit). A fault is
*caught* when its expected check fails with a diagnosis that names the real cause (the words in
`FaultCase.cause`); the correct build must pass every check. The table is the proof that each
check can fail, and on which bug.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Callable

from teardown_audit.checks import AUDIT_CHECKS
from teardown_audit.proc import reproduce_command, run_bounded

FAULT_ENV = "TEARDOWN_REF_FAULT"
# A check's child (or one exit run) that takes longer is a hang: deadlocks take this long to
# diagnose, so it is what bounds the matrix's wall time.
HANG_BOUND = 8.0
# One fault's whole audit: every check may hang once, the exit runs a few times more.
AUDIT_BOUND = 600.0
# Catching V3 is a race: per-run seeds for teardown_ref's timing chaos make it near-certain.
# 100 ms, not 20: a Py_DEBUG build finalizes slowly, and a late attach that lands before the
# interpreter state is freed only ends its thread (3.11d: 8/20 runs crash at 20 ms, 20/20 at 100).
CHAOS_SEED_ENV = "TEARDOWN_REF_CHAOS={seed}:100"

SHORT = {
    "threads-joined-on-drop": "threads",
    "fds-released-on-drop": "fds",
    "bounded-cancellation": "cancel",
    "queued-calls-rejected": "queued",
    "drop-on-own-thread": "own-thread",
    "interpreter-exit-stress": "exit",
    "concurrent-churn": "churn",
    "strict-warnings": "strict",
}


@dataclass(frozen=True)
class InterpreterFacts:
    """What decides whether a fault's row applies: the CPython version, and whether it runs
    with a GIL once teardown_ref is imported."""

    version: tuple[int, int]
    gil: bool


@dataclass(frozen=True)
class FaultCase:
    fault: str
    origin: str
    expect: str  # the check that must catch it ("" for the correct build)
    cause: tuple[str, ...] = ()  # the diagnosis must contain each of these
    seed_env: str = ""
    note: str = ""
    # A deadlock over the GIL itself: on a build running without one (3.13t/3.14t) the bug
    # cannot happen as such, and the row is not applicable there.
    needs_gil: bool = False
    # The first CPython (major, minor) on which the symptom the check sees no longer exists.
    gone_in: tuple[int, int] | None = None
    gone_why: str = ""

    def not_applicable(self, facts: InterpreterFacts) -> str:
        """Why this fault's row does not apply to that interpreter ("" when it does)."""
        if self.needs_gil and not facts.gil:
            return "a GIL deadlock; this build runs without a GIL"
        if self.gone_in is not None and facts.version >= self.gone_in:
            return self.gone_why
        return ""


CASES: tuple[FaultCase, ...] = (
    FaultCase("none", "the correct protocol", ""),
    FaultCase(
        "ignore_timeout",
        "V0: timeout not honoured (bashkit <= 0.9.0)",
        "bounded-cancellation",
        ("timeout not honoured",),
    ),
    FaultCase(
        "rendezvous_dispatch",
        "V1: first-call deadlock, rendezvous dispatch holding the GIL",
        "threads-joined-on-drop",
        ("hang", "waiting for the GIL"),
        needs_gil=True,
    ),
    FaultCase(
        "join_holding_gil",
        "V2: dealloc joins the pool holding the GIL (TM-PY-030, bashkit #2007)",
        "bounded-cancellation",
        ("hang", "joining", "while holding the GIL"),
        needs_gil=True,
    ),
    FaultCase(
        "attach_at_exit",
        "V3: threads attach during finalization (bashkit #2008)",
        "interpreter-exit-stress",
        ("signal SIG",),  # SIGSEGV; SIGABRT on a Py_DEBUG build (its gilstate assertion)
        seed_env=CHAOS_SEED_ENV,
        note="per-run chaos seeds; without chaos the crash is rare",
        gone_in=(3, 14),
        gone_why="3.14+ hangs a late attach forever instead of crashing (gh-87135), and a "
        "plain exit does not wait for the hung thread: no exit run can see it",
    ),
    FaultCase(
        "hands_off",
        "V4a: hands-off teardown, no joins, abandoned callbacks run on",
        "threads-joined-on-drop",
        ("not joined",),
    ),
    FaultCase(
        "deferred_loop_close",
        "V4b: loop left to __del__, fds held until a GC pass",
        "fds-released-on-drop",
        ("an asyncio loop not closed", "GC pass"),
    ),
    FaultCase(
        "no_cancel",
        "teardown joins without cancelling",
        "bounded-cancellation",
        ("drop took", "instead of cancelling"),
    ),
    FaultCase(
        "no_closing_flag",
        "queued-but-unstarted calls run during teardown",
        "queued-calls-rejected",
        ("not rejected",),
    ),
    FaultCase(
        "no_registry",
        "per-execution loops unreachable from dealloc",
        "bounded-cancellation",
        ("drop took", "instead of cancelling"),
    ),
    FaultCase(
        "join_self",
        "V5: a drop on the tool's own thread joins itself",
        "drop-on-own-thread",
        ("never torn down", "join"),
    ),
)


@dataclass
class FaultResult:
    case: FaultCase
    verdicts: dict[str, dict[str, Any]]  # check -> verdict as JSON
    elapsed: float
    repro: str
    problem: str = ""  # the audit process itself failed (no JSON)
    not_applicable: str = ""  # why this fault was not run on this interpreter

    @property
    def caught(self) -> bool:
        """The expected check failed, naming the cause (for "none": every check passed)."""
        if self.problem or self.not_applicable:
            return False
        if not self.case.expect:
            return all(v["status"] in ("pass", "skip") for v in self.verdicts.values())
        verdict = self.verdicts.get(self.case.expect)
        return verdict is not None and verdict["status"] == "fail" and self.names_cause

    @property
    def names_cause(self) -> bool:
        verdict = self.verdicts.get(self.case.expect, {})
        text = verdict.get("reason", "") + "\n" + "\n".join(verdict.get("evidence", []))
        return all(word in text for word in self.case.cause)

    def cell(self, check: str) -> str:
        verdict = self.verdicts.get(check)
        if verdict is None:
            return "n/a" if self.not_applicable else "?"
        mark = {"pass": "·", "fail": "✗", "error": "E", "skip": "s"}[verdict["status"]]
        return f"**{mark}**" if check == self.case.expect else mark


@dataclass
class KillMatrix:
    results: list[FaultResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(r.caught or r.not_applicable for r in self.results)


FACTS_PROBE = (
    "import sys, teardown_ref; "
    "print(*sys.version_info[:2], int(getattr(sys, '_is_gil_enabled', lambda: 1)()))"
)
FACTS_PROBE_BOUND = 60.0


def interpreter_facts(python: str) -> InterpreterFacts:
    """`python`'s version, and whether it runs with a GIL once teardown_ref is imported (False
    only on a free-threaded build that keeps it off); ValueError if it cannot say."""
    result = run_bounded([python, "-c", FACTS_PROBE], timeout=FACTS_PROBE_BOUND)
    words = (result.stdout or "").split()
    if (
        result.timed_out
        or result.returncode != 0
        or len(words) != 3
        or not all(w.isdigit() for w in words)
    ):
        tail = (result.stderr or "").strip().splitlines()[-1:]
        said = tail[0] if tail else f"printed {' '.join(words)!r}"
        raise ValueError(f"{python} cannot import teardown_ref: {said}")
    major, minor, gil = (int(w) for w in words)
    return InterpreterFacts((major, minor), gil == 1)


def run_case(
    case: FaultCase,
    *,
    python: str = sys.executable,
    hang_bound: float = HANG_BOUND,
    checks: Sequence[str] = (),
) -> FaultResult:
    """One fault's audit (every check, or only `checks`) in a bounded process of its own."""
    with tempfile.TemporaryDirectory(prefix="killmatrix-") as tmp:
        report = os.path.join(tmp, "audit.json")
        argv = [python, "-m", "teardown_audit", "audit", "--json", report]
        argv += ["--hang-bound", f"{hang_bound:g}"]
        if case.seed_env:
            argv += ["--seed-env", case.seed_env]
        for check in checks:
            argv += ["--check", check]
        env_delta = {FAULT_ENV: case.fault}
        start = time.monotonic()
        result = run_bounded(argv, timeout=AUDIT_BOUND, env={**os.environ, **env_delta})
        elapsed = time.monotonic() - start
        repro = reproduce_command(["teardown-audit", *argv[3:4], *argv[6:]], env_delta)
        if result.timed_out or not os.path.exists(report):
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            problem = "audit hung" if result.timed_out else f"audit exited {result.returncode}"
            return FaultResult(case, {}, elapsed, repro, problem=f"{problem}: {' | '.join(tail)}")
        with open(report) as f:
            data = json.load(f)
    verdicts = {v["check"]: v for v in data["verdicts"]}
    return FaultResult(case, verdicts, elapsed, repro)


def run_matrix(
    cases: Sequence[FaultCase] = CASES,
    *,
    python: str = sys.executable,
    on_done: Callable[[FaultResult], None] | None = None,
) -> KillMatrix:
    matrix = KillMatrix()
    facts = interpreter_facts(python)
    for case in cases:
        why_not = case.not_applicable(facts)
        if why_not:
            result = FaultResult(case, {}, 0.0, "", not_applicable=why_not)
        else:
            result = run_case(case, python=python)
        matrix.results.append(result)
        if on_done is not None:
            on_done(result)
    return matrix


def select_cases(names: Sequence[str] | None) -> list[FaultCase]:
    """The cases for these fault names (all when None); ValueError names an unknown one."""
    if not names:
        return list(CASES)
    known = {c.fault: c for c in CASES}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown fault {unknown[0]!r}; known: {', '.join(known)}")
    return [known[n] for n in names]


def verdict_table(matrix: KillMatrix) -> str:
    """Markdown: fault x check (✗ failed, · passed, **bold** the check expected to catch it),
    whether it was caught, and the words of the diagnosis that name the cause. Free of timings
    and counts, so two runs give the same table."""
    checks = list(AUDIT_CHECKS)
    head = ["fault", "origin", *[SHORT.get(c, c) for c in checks], "caught", "diagnosis names"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in matrix.results:
        cause = r.problem or r.not_applicable
        cause = cause or (", ".join(f"`{w}`" for w in r.case.cause) or "all checks pass")
        caught = "n/a" if r.not_applicable else "yes" if r.caught else "**NO**"
        cells = [r.case.fault, r.case.origin, *[r.cell(c) for c in checks], caught, cause]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def timing_table(matrix: KillMatrix) -> str:
    """Markdown: time to verdict of the catching check, and of the whole audit (they vary)."""
    rows = ["| fault | catching check | time to verdict | whole audit |", "|---|---|---|---|"]
    for r in matrix.results:
        verdict = r.verdicts.get(r.case.expect, {})
        took = f"{verdict['elapsed']:.1f} s" if "elapsed" in verdict else "—"
        rows.append(f"| {r.case.fault} | {r.case.expect or '—'} | {took} | {r.elapsed:.1f} s |")
    return "\n".join(rows)


def diagnosis_lines(matrix: KillMatrix) -> list[str]:
    """Each fault's reason from its catching check, and the command that reproduces it."""
    lines = []
    for r in matrix.results:
        reason = r.problem or r.verdicts.get(r.case.expect, {}).get("reason", "")
        if r.case.expect and not r.not_applicable:
            lines.append(f"- `{r.case.fault}` → {r.case.expect}: {reason}")
            lines.append(f"  reproduce: `{r.repro}`")
    return lines


BEGIN = "<!-- killmatrix:begin -->"
END = "<!-- killmatrix:end -->"


def write_into(path: str, matrix: KillMatrix, header: str) -> None:
    """Replace the text between the killmatrix markers of `path` with the verdict table."""
    with open(path) as f:
        text = f.read()
    if BEGIN not in text or END not in text:
        raise ValueError(f"{path} has no {BEGIN} ... {END} section")
    before, rest = text.split(BEGIN, 1)
    _, after = rest.split(END, 1)
    block = f"{BEGIN}\n{header}\n\n{verdict_table(matrix)}\n{END}"
    with open(path, "w") as f:
        f.write(before + block + after)
