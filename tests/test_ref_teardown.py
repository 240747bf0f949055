"""Deterministic teardown of teardown_ref while the interpreter is alive.

bashkit's teardown tests, tightened: exact counters right after `del` (no gc.collect()), no
/proc/self/task growth, stable fds, bounded cancellation, and the paths where the last reference
is dropped on one of the tool's own threads.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time

import pytest
import teardown_ref
from ref_support import (
    ABANDON_TIMEOUT,
    ABANDONED_SECONDS,
    DROP_BOUND,
    HANDOFF_BOUND,
    assert_all_released,
    async_echo,
    fd_count,
    thread_count,
    wait_for,
)


class Abandoned:
    """An async callback that sleeps ABANDONED_SECONDS and records how it ended."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.cancelled = threading.Event()
        self.finished = threading.Event()

    async def __call__(self, *args: object) -> str:
        self.started.set()
        try:
            await asyncio.sleep(ABANDONED_SECONDS)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        self.finished.set()
        return "ran to completion\n"


def make_tool(kind: str, timeout: float | None = None):
    if kind == "scripted":
        tool = teardown_ref.ScriptedTool("churn", timeout_seconds=timeout)
        tool.add_tool("work", "", async_echo)
        return tool
    return teardown_ref.Bash(custom_builtins={"work": lambda ctx: "ok\n"}, timeout_seconds=timeout)


@pytest.fixture(autouse=True)
def nothing_left_behind():
    gc.collect()  # earlier tests' cycles, so that they cannot be blamed on this one
    assert_all_released("before the test")
    yield
    assert_all_released("after the test")


@pytest.mark.parametrize("kind", ["scripted", "bash"])
def test_drop_joins_every_thread_without_gc(kind):
    gc.disable()  # a drop that only cleans up at a GC pass is not deterministic
    try:
        # One warm-up cycle: one-time threads of the runtime (TSan's background thread, say)
        # start lazily and must not be blamed on a later drop.
        tool = make_tool(kind)
        tool.execute_sync("work")
        del tool
        before = thread_count()
        for cycle in range(5):
            tool = make_tool(kind)
            assert tool.execute_sync("work; work | work").exit_code == 0
            assert teardown_ref.stats()["pool_threads"] >= 1
            del tool
            assert_all_released(f"cycle {cycle}, right after del")
            assert thread_count() <= before, (
                f"cycle {cycle}: /proc/self/task grew from {before} to {thread_count()}"
            )
    finally:
        gc.enable()


def test_execute_sync_leaves_nothing_of_the_execution_behind():
    """When execute_sync returns, its per-execution loop is joined and its job released."""
    tool = make_tool("scripted")
    assert tool.execute_sync("work").exit_code == 0
    stats = teardown_ref.stats()
    assert (stats["executions"], stats["workers"], stats["open_loops"]) == (0, 0, 0), stats
    del tool


@pytest.mark.parametrize("kind", ["scripted", "bash"])
def test_fds_stable_over_20_cycles(kind):
    gc.disable()
    try:
        tool = make_tool(kind)
        tool.execute_sync("work")
        del tool  # first cycle pays one-time imports (asyncio's selectors...)
        before = fd_count()
        for cycle in range(20):
            tool = make_tool(kind)
            tool.execute_sync("work")
            del tool
            assert fd_count() == before, (
                f"cycle {cycle}: {fd_count() - before:+d} fds after the drop returned"
            )
    finally:
        gc.enable()


@pytest.mark.parametrize("kind", ["scripted", "bash"])
def test_abandoned_callback_is_cancelled_by_the_drop(kind):
    callback = Abandoned()
    if kind == "scripted":
        tool = teardown_ref.ScriptedTool("abandon", timeout_seconds=ABANDON_TIMEOUT)
        tool.add_tool("long", "", callback)
    else:
        tool = teardown_ref.Bash(
            custom_builtins={"long": callback}, timeout_seconds=ABANDON_TIMEOUT
        )
    result = tool.execute_sync("long")
    assert (result.exit_code, result.error) == (1, "timeout")
    assert "timed out" in result.stderr
    assert callback.started.is_set()
    assert teardown_ref.stats()["inflight"] == 1, "the abandoned callback should still run"
    start = time.monotonic()
    del tool
    elapsed = time.monotonic() - start
    assert elapsed < DROP_BOUND, f"drop took {elapsed:.3f}s with an abandoned callback"
    assert callback.cancelled.is_set(), "the callback never saw CancelledError"
    assert not callback.finished.is_set()
    assert_all_released("right after the drop")


def test_timeout_returns_well_before_the_callback_ends():
    started, ended = threading.Event(), threading.Event()

    async def quarter(params, stdin):
        started.set()
        try:
            await asyncio.sleep(0.25)
        finally:
            ended.set()
        return "late\n"

    tool = teardown_ref.ScriptedTool("t", timeout_seconds=0.05)
    tool.add_tool("quarter", "", quarter)
    result = tool.execute_sync("quarter")
    # Well before: the callback's own end is what must not have happened yet.
    assert not ended.is_set(), "execute_sync waited for the callback despite the timeout"
    assert (result.exit_code, result.error) == (1, "timeout")
    del tool
    # Started: cancelled by the drop, so `finally` ran. Not started yet (a loaded machine):
    # rejected by the drop, never to run. Either way nothing of it is left running.
    assert ended.is_set() == started.is_set()


def test_queued_calls_are_rejected_while_closing():
    """Two executions in flight on one Bash loop: the drop cancels one and rejects none late."""
    first, second = Abandoned(), Abandoned()
    bash = teardown_ref.Bash(
        custom_builtins={"a": first, "b": second}, timeout_seconds=ABANDON_TIMEOUT
    )
    assert bash.execute_sync("a").error == "timeout"
    assert bash.execute_sync("b").error == "timeout"
    assert teardown_ref.stats()["inflight"] == 2
    del bash
    assert first.cancelled.is_set() and second.cancelled.is_set()


def test_blocking_callback_bounds_the_drop_without_deadlock():
    """Known bound: time.sleep inside async def cannot be cancelled mid-section; the drop waits
    for it with the GIL released, so other threads keep running Python meanwhile."""
    release = threading.Event()

    async def blocking(params, stdin):
        release.wait(ABANDONED_SECONDS)
        await asyncio.sleep(ABANDONED_SECONDS)
        return "x"

    tool = teardown_ref.ScriptedTool("blocking", timeout_seconds=0.05)
    tool.add_tool("blocking", "", blocking)
    assert tool.execute_sync("blocking").error == "timeout"
    ticks = []
    ticker = threading.Thread(target=lambda: (time.sleep(0.2), ticks.append(1), release.set()))
    ticker.start()
    del tool  # returns once the callback reaches its await and is cancelled
    ticker.join()
    assert ticks == [1], "a Python thread could not run while the drop waited"


def test_drop_during_await_execute_still_delivers_the_result():
    async def slow(params, stdin):
        await asyncio.sleep(0.05)
        return "delivered\n"

    async def main():
        tool = teardown_ref.ScriptedTool("aio")
        tool.add_tool("slow", "", slow)
        pending = tool.execute("slow")
        del tool  # the execution keeps it alive; its job drops the last reference
        return await pending

    result = asyncio.run(main())
    assert (result.exit_code, result.stdout) == (0, "delivered\n")
    # Last reference dropped on a pool thread: teardown was handed to a detached shutdown.
    wait_for(
        lambda: (
            not any(
                teardown_ref.stats()[k] for k in ("tools", "handoffs", "pool_threads", "executions")
            )
        ),
        HANDOFF_BOUND,
        "hand-off shutdown to finish",
    )


def test_last_reference_dropped_inside_a_callback_hands_off():
    """V5: the drop runs on the tool's own loop worker; it must not join itself.

    The callback takes the only reference into its frame; the call times out and the caller
    lets go; when the callback returns, its frame drops the last reference on the worker."""
    holder: dict[str, object] = {}
    handoffs_seen = []

    async def hold_then_drop(ctx):
        own = holder.pop("bash")
        await asyncio.sleep(2 * ABANDON_TIMEOUT)  # outlives the call: it is abandoned
        handoffs_before = teardown_ref.stats()["handoffs"]
        del own  # the last reference goes here, on the tool's own thread
        handoffs_seen.append(teardown_ref.stats()["handoffs"] - handoffs_before)
        return "dropped\n"

    bash = teardown_ref.Bash(
        custom_builtins={"drop": hold_then_drop}, timeout_seconds=ABANDON_TIMEOUT
    )
    holder["bash"] = bash
    assert bash.execute_sync("drop").error == "timeout"
    del bash
    wait_for(
        lambda: (
            handoffs_seen
            and not any(
                teardown_ref.stats()[k] for k in ("tools", "handoffs", "workers", "executions")
            )
        ),
        HANDOFF_BOUND,
        "hand-off shutdown after a drop on the worker thread",
    )
    assert handoffs_seen == [1], "the teardown did not hand off to a shutdown thread"


def test_first_call_on_a_fresh_tool_completes():
    """V1 shape: the worker must attach to create its loop while the caller waits."""
    tool = teardown_ref.ScriptedTool("first")
    tool.add_tool("work", "", async_echo)
    assert tool.execute_sync("work").exit_code == 0


def test_cycle_through_a_callback_is_collected_and_torn_down():
    tool = teardown_ref.ScriptedTool("cycle")
    # tool -> callbacks dict -> lambda -> (default argument) tool: only the GC can free it.
    tool.add_tool("self", "", lambda params, stdin, me=tool: repr(me))
    assert tool.execute_sync("self").stdout == "<ScriptedTool 'cycle' with 1 tools>"
    del tool
    assert teardown_ref.stats()["tools"] == 1, "the cycle should keep the tool alive"
    gc.collect()
    assert_all_released("after the cycle was collected")


def test_concurrent_churn_from_many_threads():
    """8 threads x 10 mixed iterations: fast calls, timeout then immediate drop, shared tools."""
    errors: list[BaseException] = []
    shared = make_tool("bash", timeout=5)

    def worker(n: int) -> None:
        try:
            for i in range(10):
                tool = make_tool("scripted" if (n + i) % 2 else "bash", timeout=0.02)
                if i % 3 == 0:
                    hang = Abandoned()
                    if isinstance(tool, teardown_ref.ScriptedTool):
                        tool.add_tool("hang", "", hang)
                        assert tool.execute_sync("hang").error == "timeout"
                del tool
                assert shared.execute_sync("work | cat").stdout == "ok\n"
        except BaseException as exc:  # reported below with its thread number
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
        assert not t.is_alive(), "churn thread hung for 60s"
    assert not errors, errors
