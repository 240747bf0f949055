"""Measure: per-run detection rate of teardown_ref's attach_at_exit fault, without and with the
probe's timing chaos (teardown_ref's own TEARDOWN_REF_CHAOS unset). Not a test: a measurement.

    PYTHONPATH=harness python harness/c/chaos_rate.py [RUNS] [MAX_US]

A run "detects" the fault when the exit is not clean: a signal, a nonzero status, or a
"Fatal Python error" on stderr. Each run is bounded (run_bounded, own process group).
"""

from __future__ import annotations

import os
import sys
import tempfile

from teardown_audit.isolated import child_env
from teardown_audit.native import chaos_env, find_probe_library, probe_env
from teardown_audit.proc import run_bounded

# tests/test_ref_exit.py's ABANDONED_EXIT: a module-level tool with an abandoned callback whose
# globals are a private namespace, so the tool is torn down during finalization.
SCRIPT = """
import asyncio, teardown_ref
ns = {"asyncio": asyncio}
exec("async def long(*args):\\n    await asyncio.sleep(30)\\n    return 'never'\\n", ns)
tool = teardown_ref.ScriptedTool("abandoned", timeout_seconds=0.05)
tool.add_tool("long", "", ns["long"])
bash = teardown_ref.Bash(custom_builtins={"long": ns["long"]}, timeout_seconds=0.05)
assert tool.execute_sync("long").error == "timeout"
assert bash.execute_sync("long").error == "timeout"
"""
RUN_BOUND = 30.0


def detected(env: dict[str, str], path: str) -> bool:
    result = run_bounded([sys.executable, path], timeout=RUN_BOUND, env=child_env(env))
    return (
        result.timed_out
        or result.returncode != 0
        or "Fatal Python error" in result.stderr
        or result.signal is not None
    )


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    max_us = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    so = find_probe_library()
    if so is None:
        print("build the probe first: make probe", file=sys.stderr)
        return 2
    base = {"TEARDOWN_REF_FAULT": "attach_at_exit", "TEARDOWN_REF_CHAOS": ""}
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(SCRIPT)
    modes = {
        "no probe": lambda i: base,
        "probe, chaos off": lambda i: {**base, **probe_env(so)},
        f"probe, chaos <seed>:{max_us}": lambda i: {
            **base,
            **probe_env(so),
            **chaos_env(i + 1, max_us),
        },
    }
    try:
        for label, env_for in modes.items():
            hits = sum(detected(env_for(i), f.name) for i in range(runs))
            print(f"attach_at_exit, {label}: {hits}/{runs} runs detected ({100 * hits // runs} %)")
    finally:
        os.unlink(f.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
