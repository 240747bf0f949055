"""Broken (bashkit V4, hands-off): the drop neither cancels nor joins an abandoned callback."""

from _fake_tool import ScriptedTool as _FakeTool
from _fake_tool import adapter_for, interpreter_at_exit, stats

__all__ = ["ADAPTER", "ScriptedTool", "interpreter_at_exit", "stats"]


class ScriptedTool(_FakeTool):
    no_cancel = True


ADAPTER = adapter_for(__name__, __file__)
