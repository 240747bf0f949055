"""Broken: loops dropped without close(); fds return only at a GC pass, with a ResourceWarning."""

from _fake_tool import ScriptedTool as _FakeTool
from _fake_tool import adapter_for, interpreter_at_exit, stats

__all__ = ["ADAPTER", "ScriptedTool", "interpreter_at_exit", "stats"]


class ScriptedTool(_FakeTool):
    unclosed_loop = True


ADAPTER = adapter_for(__name__, __file__)
