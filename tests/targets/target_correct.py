"""Correct target: joins its threads, closes its loops and cancels abandoned callbacks on drop."""

from _fake_tool import ScriptedTool as _FakeTool
from _fake_tool import adapter_for, interpreter_at_exit, stats

__all__ = ["ADAPTER", "ScriptedTool", "interpreter_at_exit", "stats"]


class ScriptedTool(_FakeTool):
    pass


ADAPTER = adapter_for(__name__, __file__)
