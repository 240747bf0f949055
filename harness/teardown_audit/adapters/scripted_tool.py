"""Adapter for any module with bashkit's ScriptedTool API (teardown_ref, bashkit, look-alikes)."""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Awaitable, Mapping
from types import ModuleType
from typing import Any, Callable

from teardown_audit.adapters.base import (
    EXIT_SCENARIOS,
    Adapter,
    Outcome,
    TargetError,
    TargetUnavailable,
)


class ScriptedToolAdapter(Adapter):
    """`module.ScriptedTool(name, timeout_seconds=...)`, `.add_tool(name, description, callback)`
    with callbacks `(params, stdin) -> str` (plain or async), `.execute_sync(cmds) -> ExecResult`.
    Uses `module.stats()` as counters when the module has it.

    `path`: a .py file or directory to import the module from (pure-Python look-alikes in tests).
    """

    def __init__(
        self, module_name: str, *, path: str | None = None, install_hint: str = ""
    ) -> None:
        self.module_name = module_name
        self.name = module_name
        self.search_dir = _search_dir(path)
        self.install_hint = install_hint
        self._module: ModuleType | None = None

    @property
    def module(self) -> ModuleType:
        if self._module is None:
            self.load()
        assert self._module is not None
        return self._module

    def load(self) -> None:
        if self.search_dir and self.search_dir not in sys.path:
            sys.path.insert(0, self.search_dir)
        try:
            self._module = importlib.import_module(self.module_name)
        except ModuleNotFoundError as exc:
            if exc.name != self.module_name:
                raise TargetError(f"import error in target {self.module_name!r}: {exc}") from None
            hint = f" ({self.install_hint})" if self.install_hint else ""
            raise TargetUnavailable(f"target {self.module_name!r} is not installed{hint}") from None
        except Exception as exc:
            raise TargetError(
                f"import error in target {self.module_name!r}: {type(exc).__name__}: {exc}"
            ) from None
        if not hasattr(self._module, "ScriptedTool"):
            raise TargetError(f"target {self.module_name!r} has no ScriptedTool class")
        try:  # bashkit 0.9 has no timeout_seconds: it cannot abandon a callback
            self._module.ScriptedTool("teardown_audit_probe", timeout_seconds=1.0)
        except TypeError:
            self.supports_timeout = False

    def create(
        self,
        fast: Callable[[], str],
        slow: Callable[[], Awaitable[str]],
        timeout_seconds: float | None,
    ) -> Any:
        # Only pass a timeout when one is wanted: bashkit 0.9 has no timeout_seconds at all.
        kwargs = {} if timeout_seconds is None else {"timeout_seconds": timeout_seconds}
        tool = self.module.ScriptedTool("teardown_audit", **kwargs)
        tool.add_tool("fast", "returns at once", lambda params, stdin: fast())

        async def slow_tool(params: dict[str, Any], stdin: str | None) -> str:
            return await slow()

        tool.add_tool("slow", "sleeps until cancelled", slow_tool)
        return tool

    def create_shared(
        self, callbacks: Mapping[str, Callable[[], Any]], timeout_seconds: float | None
    ) -> Any:
        bash = getattr(self.module, "Bash", None)
        if bash is None:
            return None
        kwargs = {} if timeout_seconds is None else {"timeout_seconds": timeout_seconds}
        builtins = {name: (lambda ctx, cb=cb: cb()) for name, cb in callbacks.items()}
        return bash(custom_builtins=builtins, **kwargs)

    def call(self, handle: Any, which: str) -> Outcome:
        result = handle.execute_sync(which)
        error = getattr(result, "error", None)
        timed_out = error == "timeout" or bool(TIMEOUT_TEXT.search(result.stderr or ""))
        detail = f"exit {result.exit_code}, error={error!r}, stderr={result.stderr.strip()[:120]!r}"
        return Outcome(ok=result.exit_code == 0, timed_out=timed_out, detail=detail)

    def counters(self) -> Mapping[str, int] | None:
        stats = getattr(self.module, "stats", None)
        if not callable(stats):
            return None
        return {k: v for k, v in stats().items() if isinstance(v, int)}

    def exit_script(self, scenario: str) -> str:
        if scenario not in EXIT_SCENARIOS:
            raise ValueError(f"unknown exit scenario {scenario!r}")
        path_setup = f"sys.path.insert(0, {self.search_dir!r})\n" if self.search_dir else ""
        calls = ABANDON_LINES if scenario == "abandoned" else CLEAN_LINES
        timeout = ", timeout_seconds=0.1" if scenario == "abandoned" else ""
        return EXIT_SCRIPT.format(
            scenario=scenario,
            module=self.module_name,
            path_setup=path_setup,
            timeout=timeout,
            calls=calls,
        )


# teardown_ref and bashkit <= 0.1x say error="timeout" / "timed out"; bashkit 0.20 says
# error=None, stderr "name: callback timeout" for a ScriptedTool callback, and "resource limit
# exceeded: execution timeout (50ms)" for a Bash builtin.
TIMEOUT_TEXT = re.compile(r"timed out|callback timeout|execution timeout")


def _search_dir(path: str | None) -> str | None:
    if path is None:
        return None
    path = os.path.abspath(path)
    return os.path.dirname(path) if path.endswith(".py") else path


# Standalone on purpose: it is also the reproduction command for an exit failure.
EXIT_SCRIPT = """\
# Exit scenario {scenario!r}: a module-level tool is left for Py_Finalize to tear down.
import asyncio
import re
import sys
{path_setup}
import {module} as target

# The callbacks' globals are a private namespace, not this module's: an abandoned call's
# reference to its callback must not pin this module's globals, or the tool is never torn down
# during Py_Finalize and this scenario tests nothing (a function defined here would pin them).
CALLBACKS = {{"asyncio": asyncio}}
exec(
    "async def slow(params, stdin):\\n"
    "    await asyncio.sleep(30)\\n"
    "    return 'late'\\n"
    "def fast(params, stdin):\\n"
    "    return 'ok'\\n",
    CALLBACKS,
)

TOOL = target.ScriptedTool("exit_{scenario}"{timeout})
TOOL.add_tool("fast", "returns at once", CALLBACKS["fast"])
TOOL.add_tool("slow", "sleeps 30 s", CALLBACKS["slow"])
del CALLBACKS
{calls}"""

CLEAN_LINES = """\
result = TOOL.execute_sync("fast")
assert result.exit_code == 0, (result.exit_code, result.stderr)
"""

# No fast call first: under timing chaos (up to 100 ms a site) it could itself outlast the
# short timeout, and the scenario is about the abandoned call alone.
ABANDON_LINES = """\
result = TOOL.execute_sync("slow")
timeout_text = "timed out|callback timeout|execution timeout"
timed_out = result.error == "timeout" or re.search(timeout_text, result.stderr)
assert result.exit_code == 1 and timed_out, (result.exit_code, result.error, result.stderr)
"""
