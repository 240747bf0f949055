"""Broken: 'Fatal Python error' at exit when a callback is abandoned."""

from _fake_tool import ScriptedTool as _FakeTool
from _fake_tool import adapter_for, interpreter_at_exit, stats

__all__ = ["ADAPTER", "ScriptedTool", "interpreter_at_exit", "stats"]


class ScriptedTool(_FakeTool):
    exit_fault = "fatal"


ADAPTER = adapter_for(__name__, __file__)
