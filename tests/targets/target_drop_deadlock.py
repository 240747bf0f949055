"""Broken (bashkit V2 shape): the drop joins the worker while holding the lock the worker needs."""

from _fake_tool import ScriptedTool as _FakeTool
from _fake_tool import adapter_for, interpreter_at_exit, stats

__all__ = ["ADAPTER", "ScriptedTool", "interpreter_at_exit", "stats"]


class ScriptedTool(_FakeTool):
    drop_deadlock = True


ADAPTER = adapter_for(__name__, __file__)
