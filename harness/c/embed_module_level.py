# embed_module_level.py: a module-level tool with an abandoned callback is left for
# Py_FinalizeEx (the exit regime: detach, join nothing). Must not crash or hang; its threads
# and fds outlive the interpreter by design of the protocol (the OS reclaims them at process
# exit), which an embedder that re-initializes sees as a per-cycle leak.
from __future__ import annotations

import asyncio

import teardown_ref


async def slow(params: dict, stdin: object) -> str:
    await asyncio.sleep(30)


tool = teardown_ref.ScriptedTool("embed-exit", timeout_seconds=0.05)
tool.add_tool("slow", "", slow)
assert tool.execute_sync("slow").error == "timeout"
