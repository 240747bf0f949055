"""Broken bookkeeping: threads are joined but stats()['workers'] is never decremented."""

from _fake_tool import ScriptedTool as _FakeTool
from _fake_tool import adapter_for, interpreter_at_exit, stats

__all__ = ["ADAPTER", "ScriptedTool", "interpreter_at_exit", "stats"]


class ScriptedTool(_FakeTool):
    stale_counter = True


ADAPTER = adapter_for(__name__, __file__)
