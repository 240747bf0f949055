"""Sizes and bounds of an audit. Defaults keep a full audit of a correct target under ~20 s on 2
cores; the bounds are generous safety nets that only matter when something hangs."""

from __future__ import annotations

import dataclasses
import math
import os
import sys
from dataclasses import dataclass

from teardown_audit.adapters import DEFAULT_TARGET


@dataclass
class AuditSettings:
    target: str = DEFAULT_TARGET
    python: str = sys.executable  # interpreter for every child process
    thread_cycles: int = 5  # create → exercise → drop cycles, per gc mode
    fd_cycles: int = 20
    # timeout_seconds of a tool whose callback is abandoned: the callback must have started by
    # then (a fresh worker thread and event loop, tens of ms on a loaded machine).
    call_timeout: float = 0.5
    hold_seconds: float = 10.0  # how long the abandoned callback sleeps unless cancelled
    cancel_bound: float = 5.0  # drop + CancelledError must happen within this (≈50x normal)
    exit_runs: int = 10  # per exit scenario (clean, abandoned)
    workers: int = dataclasses.field(default_factory=lambda: os.cpu_count() or 1)
    exit_timeout: float = 20.0  # per exit run: longer means "hang"
    churn_threads: int = 4
    churn_iterations: int = 10
    churn_repeats: int = 1
    churn_calls_per_tool: int = 3
    churn_timeout: float = 0.05  # timeout_seconds in churn's timeout-then-drop operation
    strict_runs: int = 2  # exit runs per scenario under -X dev -W error::ResourceWarning
    child_timeout: float = 60.0  # one isolated check process: longer means "hang"
    # "NAME=...{seed}...": every exit run gets its own seed (run index + 1), so a timing-chaos
    # variable differs per run and each failure's reproduction command names its seed.
    seed_env: str = ""

    def __post_init__(self) -> None:
        self.validate()

    def seeded_env(self, run: int) -> dict[str, str]:
        """Run `run`'s own variables from seed_env ({} without it)."""
        if not self.seed_env:
            return {}
        name, _, template = self.seed_env.partition("=")
        return {name: template.replace("{seed}", str(run + 1))}

    def validate(self) -> None:
        """Raise ValueError naming the first bad value."""
        name, eq, template = self.seed_env.partition("=")
        if self.seed_env and (not name or not eq or "{seed}" not in template):
            raise ValueError(f"seed_env must look like NAME=...{{seed}}..., got {self.seed_env!r}")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type in ("int", int) and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{f.name} must be a positive integer, got {value!r}")
            if f.type in ("float", float):
                if not isinstance(value, (int, float)) or isinstance(value, bool):
                    raise ValueError(f"{f.name} must be a number, got {value!r}")
                if not math.isfinite(value) or value <= 0:
                    raise ValueError(f"{f.name} must be a positive finite number, got {value!r}")

    def quick(self) -> AuditSettings:
        """A smoke-sized copy (--quick)."""
        return dataclasses.replace(
            self,
            thread_cycles=3,
            fd_cycles=5,
            exit_runs=3,
            churn_threads=2,
            churn_iterations=5,
            strict_runs=1,
        )
