"""Exit-stress throughput: the harness's parallel bounded runs vs a serial loop vs the floor.

Three ways to run the same N interpreter exits, interleaved round by round:
- `run_many`: the harness (`exit_runs.run_many`, `workers` = CPU count, each run under
  `run_bounded`: own process group, drained pipes, pidfd wait, group kill, classification);
- serial: one `subprocess.Popen` + `communicate` at a time (what `subprocess.run` does), plus the
  process-group kill on timeout that the project's rules require;
- floor: the same bare Popen, `workers` at a time; the most this machine gives for the payload.
Payloads: the floor command (`python -I -S -c "import asyncio"`) and teardown_ref's own exit
scripts (clean and abandoned, as the audit writes them).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from teardown_audit.adapters.scripted_tool import ScriptedToolAdapter
from teardown_audit.exit_runs import OK, run_many

RUN_TIMEOUT = 20.0
FLOOR_ARGV = [sys.executable, "-I", "-S", "-c", "import asyncio"]


def bare_run(argv: list[str]) -> int:
    """One run, output captured, killed with its whole group at the bound; returns the status."""
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        proc.communicate(timeout=RUN_TIMEOUT)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return proc.returncode


def _serial(jobs: list[list[str]]) -> float:
    start = time.perf_counter()
    for argv in jobs:
        if bare_run(argv) != 0:
            raise RuntimeError(f"serial run failed: {argv}")
    return len(jobs) / (time.perf_counter() - start)


def _floor(jobs: list[list[str]], workers: int) -> float:
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        codes = list(pool.map(bare_run, jobs))
    if any(codes):
        raise RuntimeError(f"parallel bare run failed: {codes}")
    return len(jobs) / (time.perf_counter() - start)


def _harness(jobs: list[list[str]], workers: int) -> float:
    start = time.perf_counter()
    runs = run_many([("bench", argv) for argv in jobs], workers=workers, timeout=RUN_TIMEOUT)
    took = time.perf_counter() - start
    bad = [r.key for r in runs if r.outcome != OK]
    if bad:
        raise RuntimeError(f"run_many: {len(bad)} runs not ok, first: {bad[0]}")
    return len(jobs) / took


MODES = ("run_many", "serial", "floor")
_RUNNERS: dict[str, Callable[[list[list[str]], int], float]] = {
    "run_many": _harness,
    "serial": lambda jobs, _workers: _serial(jobs),
    "floor": _floor,
}


def exit_scripts(directory: str) -> list[list[str]]:
    """teardown_ref's clean and abandoned exit scripts, as the audit writes them."""
    adapter = ScriptedToolAdapter("teardown_ref")
    argvs = []
    for scenario in ("clean", "abandoned"):
        path = os.path.join(directory, f"exit_{scenario}.py")
        with open(path, "w") as f:
            f.write(adapter.exit_script(scenario))
        argvs.append([sys.executable, path])
    return argvs


def measure(*, runs: int, rounds: int, workers: int) -> dict[str, Any]:
    """Runs per second for each (payload, mode), per round."""
    out: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-exit-") as tmp:
        payloads = {"floor command": [FLOOR_ARGV], "teardown_ref exit scripts": exit_scripts(tmp)}
        for r in range(rounds):
            for payload, argvs in payloads.items():
                jobs = [argvs[i % len(argvs)] for i in range(runs)]  # interleaved scenarios
                modes = out.setdefault(payload, {"run_many": [], "serial": [], "floor": []})
                # Rotated each round: no mode always runs first (cold caches) or last.
                for mode in MODES[r % 3 :] + MODES[: r % 3]:
                    modes[mode].append(_RUNNERS[mode](jobs, workers))
    return {"workers": workers, "runs_per_round": runs, "payloads": out}
