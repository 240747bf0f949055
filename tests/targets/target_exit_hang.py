"""Broken: interpreter exit hangs forever while a tool is alive."""

from _fake_tool import ScriptedTool as _FakeTool
from _fake_tool import adapter_for, interpreter_at_exit, stats

__all__ = ["ADAPTER", "ScriptedTool", "interpreter_at_exit", "stats"]


class ScriptedTool(_FakeTool):
    exit_fault = "hang"


ADAPTER = adapter_for(__name__, __file__)
