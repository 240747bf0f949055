"""Broken: the drop never stops the tool's pool thread (+1 thread per drop)."""

from _fake_tool import ScriptedTool as _FakeTool
from _fake_tool import adapter_for, interpreter_at_exit, stats

__all__ = ["ADAPTER", "ScriptedTool", "interpreter_at_exit", "stats"]


class ScriptedTool(_FakeTool):
    leak_thread = True


ADAPTER = adapter_for(__name__, __file__)
