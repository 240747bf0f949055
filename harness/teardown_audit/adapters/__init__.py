"""Target adapters: the protocol, the built-in targets and the --target loader."""

from __future__ import annotations

from teardown_audit.adapters.base import (
    EXIT_SCENARIOS,
    FAST,
    SLOW,
    Adapter,
    Outcome,
    TargetError,
    TargetUnavailable,
)
from teardown_audit.adapters.builtin import BUILTIN, DEFAULT_TARGET
from teardown_audit.adapters.loader import load_adapter, resolve_adapter
from teardown_audit.adapters.scripted_tool import ScriptedToolAdapter

__all__ = [
    "BUILTIN",
    "DEFAULT_TARGET",
    "EXIT_SCENARIOS",
    "FAST",
    "SLOW",
    "Adapter",
    "Outcome",
    "ScriptedToolAdapter",
    "TargetError",
    "TargetUnavailable",
    "load_adapter",
    "resolve_adapter",
]
