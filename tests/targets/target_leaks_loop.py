"""Broken: every execution's asyncio loop stays open forever (+3 fds per drop)."""

from _fake_tool import ScriptedTool as _FakeTool
from _fake_tool import adapter_for, interpreter_at_exit, stats

__all__ = ["ADAPTER", "ScriptedTool", "interpreter_at_exit", "stats"]


class ScriptedTool(_FakeTool):
    leak_loop = True


ADAPTER = adapter_for(__name__, __file__)
