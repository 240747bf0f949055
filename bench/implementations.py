"""The implementations compared by the dispatch and drop benchmarks, behind one small interface.

Each builds a tool with a trivial `async def` callback (`noop`, returns at once) and a `slow`
one (sleeps 30 s unless cancelled; records when it observes CancelledError), so every
implementation runs the same Python work and only its dispatch and teardown differ.
"""

from __future__ import annotations

import asyncio
import importlib
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

SLOW_SECONDS = 30.0


@dataclass
class Probe:
    """Shared by a tool's callbacks and the benchmark: when `slow` started and was cancelled."""

    started: list[float] = field(default_factory=list)
    cancelled: list[float] = field(default_factory=list)

    async def noop(self, *args: Any) -> str:
        return "ok"

    async def slow(self, *args: Any) -> str:
        self.started.append(time.perf_counter())
        try:
            await asyncio.sleep(SLOW_SECONDS)
        except asyncio.CancelledError:
            self.cancelled.append(time.perf_counter())
            raise
        return "late"


@dataclass(frozen=True)
class Implementation:
    name: str
    make: Callable[[Probe, Optional[float]], Any]  # (probe, timeout) -> tool


def _scripted(cls: Any) -> Callable[[Probe, Optional[float]], Any]:
    def make(probe: Probe, timeout: Optional[float]) -> Any:
        kwargs = {} if timeout is None else {"timeout_seconds": timeout}
        tool = cls("bench", **kwargs)
        tool.add_tool("noop", "returns at once", probe.noop)
        tool.add_tool("slow", "sleeps until cancelled", probe.slow)
        return tool

    return make


def _bash(cls: Any) -> Callable[[Probe, Optional[float]], Any]:
    def make(probe: Probe, timeout: Optional[float]) -> Any:
        kwargs = {} if timeout is None else {"timeout_seconds": timeout}
        return cls(custom_builtins={"noop": probe.noop, "slow": probe.slow}, **kwargs)

    return make


def _peer(pool: bool) -> Callable[[Probe, Optional[float]], Any]:
    from bench import peer

    def make(probe: Probe, timeout: Optional[float]) -> Any:
        tool = peer.ScriptedTool("bench", timeout, pool=pool)
        tool.add_tool("noop", "returns at once", probe.noop)
        tool.add_tool("slow", "sleeps until cancelled", probe.slow)
        return tool

    return make


def bashkit_scripted_tool() -> Optional[Any]:
    """bashkit's ScriptedTool (bashkit.scripted from 0.20 on), or None when not installed."""
    for module in ("bashkit.scripted", "bashkit"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # the 0.20 move notice
                return importlib.import_module(module).ScriptedTool
        except (ImportError, AttributeError):
            continue
    return None


def available() -> tuple[list[Implementation], list[str]]:
    """Every implementation installed here, and a note for each one that is not."""
    import teardown_ref

    impls = [
        Implementation("ref ScriptedTool", _scripted(teardown_ref.ScriptedTool)),
        Implementation("ref Bash", _bash(teardown_ref.Bash)),
        Implementation("peer (pool job)", _peer(pool=True)),
        Implementation("peer (direct)", _peer(pool=False)),
    ]
    missing = []
    bashkit_tool = bashkit_scripted_tool()
    if bashkit_tool is None:
        missing.append("bashkit not installed: its column is left out")
    else:
        impls.append(Implementation("bashkit ScriptedTool", _scripted(bashkit_tool)))
    return impls, missing


def exit_code(result: Any) -> int:
    return int(result.exit_code)
