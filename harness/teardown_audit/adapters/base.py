"""The adapter protocol: how the harness drives one native extension (see specs/harness.md)."""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, Callable

FAST = "fast"
SLOW = "slow"
EXIT_SCENARIOS = ("clean", "abandoned")


class TargetError(Exception):
    """The target cannot be used at all (unknown name, import error, bad adapter); one line."""


class TargetUnavailable(TargetError):
    """The target's extension is not installed."""


@dataclass(frozen=True)
class Outcome:
    """What one call through the target gave back."""

    ok: bool  # the callback's result came back as a success
    timed_out: bool  # the target reported its own timeout (the callback was abandoned)
    detail: str  # a short description for evidence, e.g. "exit 1, error='timeout'"


class Adapter(abc.ABC):
    """Subclass this for your extension. Keep no reference to a handle after returning it: the
    harness drops a handle by deleting the only reference it holds: that drop is what is audited.
    """

    #: Short name shown in reports.
    name: str = "adapter"
    #: The --target text that re-creates this adapter in a subprocess; set by the loader.
    spec: str = ""
    #: Whether the target can abandon a callback on a timeout (needed by the cancellation check).
    supports_timeout: bool = True

    def load(self) -> None:  # noqa: B027 - optional hook, empty by default
        """Import the extension. Raise TargetUnavailable / TargetError with one line if it can't."""

    @abc.abstractmethod
    def create(
        self,
        fast: Callable[[], str],
        slow: Callable[[], Awaitable[str]],
        timeout_seconds: float | None,
    ) -> Any:
        """Create one object that owns native threads, with `fast` and `slow` registered as
        callbacks it will run on its own threads. With `timeout_seconds`, a call that takes longer
        must return a timeout and abandon the callback."""

    @abc.abstractmethod
    def call(self, handle: Any, which: str) -> Outcome:
        """Run callback `which` ("fast" or "slow") through `handle`, synchronously."""

    def create_shared(
        self, callbacks: Mapping[str, Callable[[], Any]], timeout_seconds: float | None
    ) -> Any:
        """Optional: one object whose calls all run on ONE loop thread (bashkit's `Bash` with
        custom builtins), with each callback registered under its name (each returns a str or
        an awaitable of one). `call(handle, name)` runs one. None when the target has no such
        object: the queued-calls check is then skipped with that reason."""
        return None

    def counters(self) -> Mapping[str, int] | None:
        """Process-wide counts of the extension's own threads/loops/callbacks, if it exposes them
        (exact mode of the threads check). None when it does not."""
        return None

    def exit_script(self, scenario: str) -> str:
        """Python source of a script that leaves a module-level object alive at interpreter exit:
        "clean" after a fast call, "abandoned" with only the slow callback, abandoned by a
        timeout (no fast call there: under timing chaos it could outlast the short timeout).
        The default drives this adapter through the harness; override it with a standalone script
        (a better reproduction) when you can."""
        if scenario not in EXIT_SCENARIOS:
            raise ValueError(f"unknown exit scenario {scenario!r}")
        return GENERIC_EXIT_SCRIPT.format(spec=self.spec, scenario=scenario)


GENERIC_EXIT_SCRIPT = """\
# Exit scenario {scenario!r}: a module-level object is left for Py_Finalize to tear down.
from teardown_audit.exit_scenario import build

TOOL = build({spec!r}, {scenario!r})
"""
