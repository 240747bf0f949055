"""Run the steps for every selected interpreter: venv -> build -> tests -> audit.

A step that fails stops that interpreter's later steps (their rows say why, as errors: a
test run against a half-built extension proves nothing). Interpreters are independent:
`jobs` > 1 runs that many side by side.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Optional

from teardown_audit.exit_runs import kill_children
from teardown_audit.matrix.interpreters import Interpreter
from teardown_audit.matrix.killmatrix_step import killmatrix_step
from teardown_audit.matrix.results import InterpreterResult, MatrixResult
from teardown_audit.matrix.steps import (
    TIMEOUTS,
    StepContext,
    audit_step,
    build_step,
    tests_step,
    venv_step,
)
from teardown_audit.verdict import Verdict, errored

# venv and build always run: every other step needs them.
STEPS = ("tests", "audit", "killmatrix")


@dataclass
class RunOptions:
    repo: str
    venv_root: str
    reports: str
    steps: Sequence[str] = STEPS
    jobs: int = 1
    pytest_args: Sequence[str] = ()
    audit_args: Sequence[str] = ()
    timeouts: dict[str, float] = field(default_factory=lambda: dict(TIMEOUTS))
    stop: threading.Event = field(default_factory=threading.Event)  # set on interrupt


Progress = Callable[[str], None]


def run_one(interp: Interpreter, opts: RunOptions, say: Progress) -> InterpreterResult:
    start = time.monotonic()
    ctx = StepContext(
        interp=interp,
        repo=opts.repo,
        venv=os.path.join(opts.venv_root, interp.venv_name),
        reports=os.path.join(opts.reports, interp.venv_name[len("matrix-") :]),
        timeouts=opts.timeouts,
        pytest_args=opts.pytest_args,
        audit_args=opts.audit_args,
    )
    os.makedirs(os.path.join(ctx.reports, "logs"), exist_ok=True)
    for old in os.listdir(os.path.join(ctx.reports, "logs")):
        os.unlink(os.path.join(ctx.reports, "logs", old))  # logs are per run, appended by steps
    result = InterpreterResult(interp)
    plan: list[tuple[str, Callable[[StepContext], list[Verdict]]]] = [
        ("venv", lambda c: [venv_step(c)]),
        ("build", lambda c: [build_step(c)]),
    ]
    if "tests" in opts.steps:
        plan.append(("tests", lambda c: [tests_step(c)]))
    if "audit" in opts.steps:
        plan.append(("audit", audit_step))
    if "killmatrix" in opts.steps:
        plan.append(("killmatrix", killmatrix_step))
    blocked: Optional[str] = None
    for name, step in plan:
        if opts.stop.is_set():
            blocked = "interrupted"
        if blocked is not None:
            result.verdicts.append(errored(name, f"not run: {blocked}"))
            continue
        say(f"[matrix] {interp.label}: {name} ...")
        verdicts = step(ctx)
        result.verdicts += verdicts
        for v in verdicts:
            say(f"[matrix] {interp.label}: {v.check} {v.status.upper()} ({v.elapsed:.1f} s)")
        if name in ("venv", "build") and not all(v.ok for v in verdicts):
            blocked = f"{name} failed"
    result.elapsed = time.monotonic() - start
    result.write_junit(os.path.join(ctx.reports, "junit.xml"))
    return result


def run_matrix(
    interps: Sequence[Interpreter],
    opts: RunOptions,
    say: Progress,
    shard: Optional[tuple[int, int]] = None,
    notes: Sequence[str] = (),
) -> MatrixResult:
    start = time.monotonic()
    lock = threading.Lock()

    def locked_say(message: str) -> None:
        with lock:
            say(message)

    if opts.jobs <= 1 or len(interps) <= 1:
        results = [run_one(i, opts, locked_say) for i in interps]
    else:
        pool = ThreadPoolExecutor(max_workers=opts.jobs, thread_name_prefix="matrix")
        try:
            results = list(pool.map(lambda i: run_one(i, opts, locked_say), interps))
        except BaseException:
            # Ctrl-C / SIGTERM reach only this thread: stop the workers from starting another
            # step, kill the children they are waiting for, and do not wait for the pool.
            opts.stop.set()
            kill_children()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
    return MatrixResult(
        results=results, notes=list(notes), shard=shard, elapsed=time.monotonic() - start
    )
