"""Broken: the tool sits in a reference cycle, so only gc.collect() tears it down."""

from _fake_tool import ScriptedTool as _FakeTool
from _fake_tool import adapter_for, interpreter_at_exit, stats

__all__ = ["ADAPTER", "ScriptedTool", "interpreter_at_exit", "stats"]


class ScriptedTool(_FakeTool):
    ref_cycle = True


ADAPTER = adapter_for(__name__, __file__)
