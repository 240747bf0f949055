"""The hang watchdog combines the probe's ptrace-free native dump with its own capture."""

from __future__ import annotations

import os
import sys

import pytest
from teardown_audit.native.locate import find_probe_library, probe_env
from teardown_audit.proc import run_bounded

# A healthy run of the script takes ~0.2 s; the deadlock is certain, so this is its hang bound.
HANG_BOUND = 5.0

DEADLOCK = """
import asyncio, teardown_ref
t = teardown_ref.ScriptedTool("v2", timeout_seconds=0.5)
t.add_tool("q", "", lambda p, s: asyncio.sleep(30))
assert t.execute_sync("q").error == "timeout"
del t  # joins holding the GIL: the abandoned call's job needs the GIL to finish
"""


def test_hang_report_carries_the_probes_own_stacks():
    library = find_probe_library()
    if library is None:
        pytest.fail("the probe is not built: make test builds it (ci/probe.mk, test-c)")
    env = {**probe_env(library), "TEARDOWN_REF_FAULT": "join_holding_gil"}
    result = run_bounded(
        [sys.executable, "-c", DEADLOCK], timeout=HANG_BOUND, env={**os.environ, **env}
    )
    assert result.timed_out and result.hang is not None, result
    stacks = result.hang.native_stacks
    assert "--- probe (no ptrace):" in stacks, result.hang.notes
    probe_part = stacks.split("--- probe (no ptrace):", 1)[1]
    assert "tr_engine_teardown" in probe_part  # the join, seen by the thread itself
    assert "created by" in probe_part and "teardown_ref" in probe_part
    assert "while holding the GIL" in result.hang.diagnosis
