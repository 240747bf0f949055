"""Run by generated exit scripts: build a module-level object for one exit scenario."""

from __future__ import annotations

from typing import Any

from teardown_audit.adapters import load_adapter
from teardown_audit.adapters.base import FAST, SLOW
from teardown_audit.callbacks import ProbeCallbacks

# Kept at module level so the callbacks live as long as the object (until Py_Finalize).
CALLBACKS = ProbeCallbacks(hold_seconds=30.0)


def build(spec: str, scenario: str) -> Any:
    adapter = load_adapter(spec)
    timeout = 0.1 if scenario == "abandoned" else None
    handle = adapter.create(CALLBACKS.fast, CALLBACKS.slow, timeout)
    if scenario == "abandoned":
        # No fast call first: under timing chaos it could itself outlast the short timeout.
        outcome = adapter.call(handle, SLOW)
        if not outcome.timed_out:
            raise SystemExit(f"exit scenario: slow call did not time out: {outcome.detail}")
        return handle
    outcome = adapter.call(handle, FAST)
    if not outcome.ok:
        raise SystemExit(f"exit scenario: fast call failed: {outcome.detail}")
    return handle
