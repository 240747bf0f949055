"""Dispatch throughput: `execute_sync("noop")` with a trivial async callback, back to back.

Rounds are interleaved across implementations (round r of every implementation, then r+1), so
a burst of load from the other users of the machine hits them all alike; the ratios come from
the same rounds. One tool per implementation, warmed up first (the first call starts threads).
"""

from __future__ import annotations

import gc
import time
from typing import Any

from bench.implementations import Implementation, Probe, exit_code
from bench.timing import latency, rate

WARMUP = 50


def measure(impls: list[Implementation], *, calls: int, rounds: int) -> dict[str, dict[str, Any]]:
    """{name: {"calls_per_s": rate(...), "latency": latency(...)}} for each implementation."""
    tools = {}
    for impl in impls:
        tool = impl.make(Probe(), None)
        for _ in range(WARMUP):
            _check(impl.name, tool.execute_sync("noop"))
        tools[impl.name] = tool
    per_round: dict[str, list[float]] = {name: [] for name in tools}
    samples: dict[str, list[float]] = {name: [] for name in tools}
    gc.collect()
    gc.disable()  # a collection would land in one implementation's round at random
    try:
        for _ in range(rounds):
            for name, tool in tools.items():
                took = samples[name]
                begin = time.perf_counter()
                for _ in range(calls):
                    t0 = time.perf_counter()
                    result = tool.execute_sync("noop")
                    took.append(time.perf_counter() - t0)
                    _check(name, result)
                per_round[name].append(calls / (time.perf_counter() - begin))
            gc.collect()
    finally:
        gc.enable()
        tools.clear()  # drops every tool (and joins its threads) here, not at exit
    return {
        name: {"calls_per_s": rate(per_round[name]), "latency": latency(samples[name])}
        for name in per_round
    }


def _check(name: str, result: Any) -> None:
    if exit_code(result) != 0:
        raise RuntimeError(f"{name}: noop call failed: {result!r}")
