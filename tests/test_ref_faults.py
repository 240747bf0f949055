"""Fault injection in teardown_ref: each fault reproduces its historical bug on demand.

The kill matrix (teardown-audit killmatrix) proves the harness catches every fault; these tests
prove the faults themselves manifest, quickly and in-process where they cannot hang.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import warnings

import pytest
import teardown_ref
from ref_support import (
    ABANDON_TIMEOUT,
    HANDOFF_BOUND,
    assert_all_released,
    fd_count,
    run_python,
    wait_for,
)

# Long enough to be told apart from a cancelled callback, short enough for a test.
SHORT_CALLBACK = 0.3
# Outlives ABANDON_TIMEOUT: the call times out while the callback runs.
ABANDONED_CALLBACK = 4 * ABANDON_TIMEOUT
# A bound for the faults that hang: a healthy run of the same script takes ~0.1 s.
HANG_BOUND = 5.0


class Recorder:
    def __init__(self, seconds: float = SHORT_CALLBACK) -> None:
        self.seconds = seconds
        self.started: list[str] = []
        self.cancelled = threading.Event()
        self.finished = threading.Event()

    async def __call__(self, *args: object) -> str:
        self.started.append("x")
        try:
            await asyncio.sleep(self.seconds)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        self.finished.set()
        return "finished\n"


@pytest.fixture
def fault():
    def inject(name: str) -> None:
        teardown_ref.set_fault(name)

    yield inject
    teardown_ref.set_fault("none")
    wait_for(lambda: not any(teardown_ref.stats().values()), HANDOFF_BOUND, "fault leftovers")
    gc.collect()


def test_fault_api():
    assert teardown_ref.FAULTS[0] == "none"
    assert {"ignore_timeout", "attach_at_exit", "racy_flag", "join_self"} <= set(
        teardown_ref.FAULTS
    )
    assert teardown_ref.fault() == "none"
    with pytest.raises(ValueError, match="unknown fault 'bogus'"):
        teardown_ref.set_fault("bogus")
    with pytest.raises(TypeError, match="must be a str"):
        teardown_ref.set_fault(3)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TEARDOWN_REF_FAULT": "bogus"}, "TEARDOWN_REF_FAULT=bogus is not a known fault"),
        ({"TEARDOWN_REF_CHAOS": "x"}, "TEARDOWN_REF_CHAOS=x: expected <seed>[:<max_ms>]"),
        ({"TEARDOWN_REF_CHAOS": "1:0"}, "TEARDOWN_REF_CHAOS=1:0: expected <seed>[:<max_ms>]"),
    ],
)
def test_bad_environment_fails_the_import_clearly(env, message):
    proc = run_python("import teardown_ref", env=env)
    assert proc.returncode == 1
    assert f"ValueError: {message}" in proc.stderr


def test_environment_selects_the_fault():
    proc = run_python(
        "import teardown_ref; print(teardown_ref.fault())",
        env={"TEARDOWN_REF_FAULT": "no_cancel"},
    )
    assert proc.stdout == "no_cancel\n"


def test_ignore_timeout_waits_for_the_callback(fault):
    fault("ignore_timeout")
    callback = Recorder()
    tool = teardown_ref.ScriptedTool("v0", timeout_seconds=0.01)
    tool.add_tool("slow", "", callback)
    result = tool.execute_sync("slow")
    assert (result.exit_code, result.error, result.stdout) == (0, None, "finished\n")


@pytest.mark.parametrize("name", ["no_cancel", "no_registry"])
def test_drop_without_cancellation_lets_the_callback_finish(fault, name):
    fault(name)
    callback = Recorder(ABANDONED_CALLBACK)
    tool = teardown_ref.ScriptedTool("nc", timeout_seconds=ABANDON_TIMEOUT)
    tool.add_tool("slow", "", callback)
    assert tool.execute_sync("slow").error == "timeout"
    assert callback.started, "the callback had not started when the call timed out"
    del tool  # joins, but only once the callback ran to its end
    assert callback.finished.is_set() and not callback.cancelled.is_set()
    assert_all_released("after the uncancelled drop")


def test_hands_off_leaves_threads_running_after_the_drop(fault):
    fault("hands_off")
    callback = Recorder(ABANDONED_CALLBACK)
    tool = teardown_ref.ScriptedTool("v4a", timeout_seconds=ABANDON_TIMEOUT)
    tool.add_tool("slow", "", callback)
    assert tool.execute_sync("slow").error == "timeout"
    assert callback.started, "the callback had not started when the call timed out"
    del tool
    stats = teardown_ref.stats()
    assert stats["workers"] == 1 and stats["inflight"] == 1, stats
    wait_for(callback.finished.is_set, HANDOFF_BOUND, "abandoned callback to finish")
    assert not callback.cancelled.is_set()


def test_deferred_loop_close_holds_fds_until_gc(fault):
    fault("deferred_loop_close")
    gc.collect()
    before = fd_count()
    bash = teardown_ref.Bash(custom_builtins={"q": lambda ctx: "q"})
    bash.execute_sync("q")
    del bash
    assert fd_count() - before == 3, "1 eventpoll + 2 sockets of the unclosed loop"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    assert fd_count() == before
    assert any("unclosed event loop" in str(w.message) for w in caught), caught


def test_no_closing_flag_runs_a_queued_call_during_teardown(fault):
    fault("no_closing_flag")
    started = []

    def block(ctx):
        started.append(ctx.name)
        time.sleep(SHORT_CALLBACK)  # holds the loop thread: the next call stays queued
        return "x"

    bash = teardown_ref.Bash(custom_builtins={"a": block, "b": block}, timeout_seconds=0.01)
    assert bash.execute_sync("a").error == "timeout"
    assert bash.execute_sync("b").error == "timeout"
    del bash
    assert started == ["a", "b"]


@pytest.mark.parametrize(
    ("name", "script"),
    [
        (
            "rendezvous_dispatch",
            "t = teardown_ref.ScriptedTool('v1'); t.add_tool('q', '', lambda p, s: 'q')\n"
            "t.execute_sync('q')",
        ),
        (
            "join_holding_gil",
            "import asyncio\n"
            "t = teardown_ref.ScriptedTool('v2', timeout_seconds=0.01)\n"
            "t.add_tool('q', '', lambda p, s: asyncio.sleep(30))\n"
            "t.execute_sync('q'); del t",
        ),
    ],
)
def test_deadlock_faults_hang(name, script):
    proc = run_python(
        "import teardown_ref\n" + script, env={"TEARDOWN_REF_FAULT": name}, timeout=HANG_BOUND
    )
    assert proc.returncode is None, f"{name} should deadlock: {proc}"
    proc = run_python("import teardown_ref\n" + script, timeout=HANG_BOUND)
    assert (proc.returncode, proc.stderr) == (0, "")
