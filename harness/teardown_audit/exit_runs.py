"""Run a script many times in parallel bounded subprocesses and classify how each exit went."""

from __future__ import annotations

import os
import re
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Callable

from teardown_audit.isolated import child_env
from teardown_audit.proc import RunResult, descendants, kill_group, run_bounded

OK = "ok"
HANG = "hang"
FATAL = "fatal error"
SIGNAL = "signal"
NONZERO = "nonzero exit"
WARNING = "warning"

# faulthandler (enabled in every child by run_bounded) prints "Fatal Python error: <signal>" for
# a crash; that is the signal speaking. Any other "Fatal Python error: X" is CPython's own
# Py_FatalError (e.g. "PyGILState_Release: ..."), worth its own class.
FAULTHANDLER_TITLES = (
    "Segmentation fault",
    "Aborted",
    "Bus error",
    "Floating-point exception",
    "Illegal instruction",
)
FATAL_RE = re.compile(r"Fatal Python error: (.*)")
WARNING_PATTERNS = ("ResourceWarning", "Exception ignored")
INTERRUPT_CLEANUP_SECONDS = 20.0


@dataclass
class ExitRun:
    label: str  # which script / scenario
    result: RunResult
    outcome: str  # one of the classes above
    detail: str  # e.g. "SIGSEGV", the quoted fatal error, the first warning line
    env_delta: dict[str, str] = field(default_factory=dict)  # this run's own variables (seed)

    @property
    def key(self) -> str:
        """Class plus the detail that matters for rates: 'signal SIGSEGV', 'nonzero exit 1'."""
        if self.outcome in (SIGNAL, NONZERO):
            return f"{self.outcome} {self.detail}"
        return self.outcome


def classify(result: RunResult) -> tuple[str, str]:
    """(class, detail) for one finished run; precedence hang > fatal > signal > exit > warning."""
    if result.timed_out:
        diagnosis = result.hang.diagnosis if result.hang is not None else "no stacks captured"
        return HANG, diagnosis
    for match in FATAL_RE.finditer(result.stderr):
        title = match.group(1).strip()
        if not title.startswith(FAULTHANDLER_TITLES):
            return FATAL, f'"Fatal Python error: {title}"'
    if result.signal:
        return SIGNAL, result.signal
    if result.returncode != 0:
        return NONZERO, str(result.returncode)
    for line in result.stderr.splitlines():
        if any(p in line for p in WARNING_PATTERNS):
            return WARNING, line.strip()
    return OK, ""


def run_many(
    jobs: Sequence[tuple[str, list[str]]],
    *,
    workers: int,
    timeout: float,
    env_extra: dict[str, str] | None = None,
    run_env: Callable[[int], dict[str, str]] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[ExitRun]:
    """Run each (label, argv) under run_bounded, `workers` at a time; `run_env(i)` adds run i's
    own variables (a chaos seed, say), kept with the run for its reproduction command. On
    Ctrl-C, every child process group is killed before KeyboardInterrupt propagates: nothing is
    left running."""
    env = child_env(env_extra)
    done = 0
    lock = threading.Lock()
    stop = threading.Event()

    def one(index: int, label: str, argv: list[str]) -> ExitRun:
        nonlocal done
        if stop.is_set():  # interrupted: start nothing new
            raise KeyboardInterrupt
        delta = run_env(index) if run_env is not None else {}
        result = run_bounded(argv, timeout=timeout, env={**env, **delta})
        outcome, detail = classify(result)
        with lock:
            if stop.is_set():  # killed by the interrupt: not a run, and nothing to report
                raise KeyboardInterrupt
            done += 1
            if progress is not None:
                progress(done, len(jobs))
        return ExitRun(label, result, outcome, detail, delta)

    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="exit-run")
    futures: list[Future[ExitRun]] = []
    try:
        for index, (label, argv) in enumerate(jobs):  # an interrupt mid-way knows every future
            futures.append(pool.submit(one, index, label, argv))
        return [f.result() for f in futures]
    except BaseException:
        stop.set()
        for f in futures:
            f.cancel()
        # A worker may start a child between our kill and its next stop check: kill until every
        # run has returned (each kill makes its run_bounded return at once).
        deadline = time.monotonic() + INTERRUPT_CLEANUP_SECONDS
        while not all(f.done() for f in futures) and time.monotonic() < deadline:
            kill_children()
            wait(futures, timeout=0.1)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def kill_children() -> None:
    """Kill the process group of every child of this process (run_bounded makes each child a
    group leader); their run_bounded calls then return at once."""
    for pid in descendants(os.getpid()):
        kill_group(pid, timeout=2.0)


def rates(runs: Sequence[ExitRun]) -> str:
    """'10/10 ok' or '7/10 ok, 3/10 signal SIGSEGV'."""
    counts = Counter(r.key for r in runs)
    total = len(runs)
    order = sorted(counts.items(), key=lambda kv: (kv[0] != OK, -kv[1], kv[0]))
    return ", ".join(f"{n}/{total} {key}" for key, n in order)
