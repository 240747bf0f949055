# embed_alive.py: one interpreter lifetime of teardown_ref under teardown-embed. Every tool is
# dropped while the interpreter is alive, so everything must be joined and closed in the cycle.
from __future__ import annotations

import asyncio

import teardown_ref


async def slow(params: dict, stdin: object) -> str:
    await asyncio.sleep(30)


tool = teardown_ref.ScriptedTool("embed", timeout_seconds=0.05)
tool.add_tool("fast", "", lambda params, stdin: "ok\n")
tool.add_tool("slow", "", slow)
assert tool.execute_sync("fast").stdout == "ok\n"
assert tool.execute_sync("slow").error == "timeout"
bash = teardown_ref.Bash(custom_builtins={"q": lambda ctx: "q\n"})
assert bash.execute_sync("q").stdout == "q\n"
del tool, bash
left = {k: v for k, v in teardown_ref.stats().items() if v and k != "handoffs"}
assert not left, f"teardown_ref still holds {left}"
