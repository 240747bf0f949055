"""Exact per-library teardown checks on top of the probe.

A *window* runs from one boundary mark to the next (a cycle: create → exercise → drop); the
target's library must have joined every thread and closed every fd it created inside the
window by the window's end ("drop returned"). Threads and fds of other libraries — an
unrelated Python thread pool, another extension's pool — are never counted, so the check is
exact where /proc counts can only say "no growth".
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from teardown_audit.native.binding import Event, FdLeak, Probe, ThreadLeak, probe

START = "cycle started"
DROP_STARTED = "drop started"
DROP_RETURNED = "drop returned"


@dataclass
class Window:
    since: int
    until: int
    threads: list[ThreadLeak]
    fds: list[FdLeak]

    @property
    def clean(self) -> bool:
        return not self.threads and not self.fds


@dataclass
class Accounting:
    """Windows between successive `boundary()` calls, for one library."""

    probe: Probe
    lib: int
    windows: list[Window] = field(default_factory=list)
    _since: int | None = None

    @property
    def library(self) -> str:
        stats = self.probe.stats(self.lib)
        return stats.path if stats else "?"

    @property
    def name(self) -> str:
        return os.path.basename(self.library)

    def begin(self) -> None:
        self._since = self.probe.mark(START)

    def end(self) -> Window:
        """Close the current window at "drop returned" and judge it."""
        if self._since is None:
            raise RuntimeError("end() without begin()")
        until = self.probe.mark(DROP_RETURNED)
        window = Window(
            self._since,
            until,
            self.probe.thread_leaks(self.lib, self._since, until),
            self.probe.fd_leaks(self.lib, self._since, until),
        )
        self.windows.append(window)
        self._since = None
        return window

    def boundary(self) -> None:
        """End the running window (if any) and begin the next: for callers that only get a
        hook after each drop (the /proc-based checks' probe function)."""
        if self._since is not None:
            self.end()
        self.begin()

    # -- reporting ---------------------------------------------------------------------------

    @property
    def leaky(self) -> list[Window]:
        return [w for w in self.windows if not w.clean]

    def timeline(self, window: Window) -> list[str]:
        events: list[Event] = [
            e for e in self.probe.timeline(window.since - 1) if e.seq <= window.until
        ]
        t0 = events[0].t_ns if events else 0
        mine = [e for e in events if e.kind == "mark" or e.library == self.name]
        return [e.describe(t0) for e in mine[:60]]

    def thread_reason(self) -> str | None:
        bad = [w for w in self.windows if w.threads]
        if not bad:
            return None
        per = _rate([len(w.threads) for w in self.windows])
        shown = ", ".join(t.describe() for t in bad[-1].threads[:4])
        return (
            f"exact (probe): {per} of {self.name} not joined before the drop returned in "
            f"{len(bad)}/{len(self.windows)} cycles: {shown}"
        ).replace("{unit}", "thread")

    def fd_reason(self) -> str | None:
        bad = [w for w in self.windows if w.fds]
        if not bad:
            return None
        per = _rate([len(w.fds) for w in self.windows]).replace("{unit}", "fd")
        shown = ", ".join(f.describe() for f in bad[-1].fds[:6])
        return (
            f"exact (probe): {per} of {self.name} not closed before the drop returned in "
            f"{len(bad)}/{len(self.windows)} cycles: {shown}"
        )

    def evidence(self) -> list[str]:
        stats = self.probe.stats(self.lib)
        lines = [stats.describe()] if stats else []
        bad = self.leaky
        if bad:
            lines.append("timeline of the last failing cycle (probe, this library + marks):")
            lines += ["  " + line for line in self.timeline(bad[-1])]
        return lines

    def data(self) -> dict[str, Any]:
        return {
            "library": self.library,
            "windows": len(self.windows),
            "thread_leaks": [len(w.threads) for w in self.windows],
            "fd_leaks": [len(w.fds) for w in self.windows],
        }


def _rate(counts: list[int]) -> str:
    if counts and len(set(counts)) == 1:
        n = counts[0]
        return f"{n} {{unit}}{'s' if n > 1 else ''} per cycle"
    n = max(counts)
    return f"up to {n} {{unit}}{'s' if n > 1 else ''} in a cycle"


def accounting_for(target: Any) -> Accounting | None:
    """Accounting for an adapter's (or a module's) native library, or None when the probe is
    not loaded or the target is not a native extension module."""
    loaded = probe()
    if loaded is None:
        return None
    module = target if isinstance(target, ModuleType) else getattr(target, "module", None)
    if not isinstance(module, ModuleType):
        return None
    lib = loaded.library_of(module)
    return None if lib is None or lib <= 0 else Accounting(loaded, lib)
