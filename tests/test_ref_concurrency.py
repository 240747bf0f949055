"""teardown_ref used from several Python threads at once: what holds without a GIL.

The module declares `Py_MOD_GIL_NOT_USED` on free-threaded builds (3.13t/3.14t, run by the
GitHub workflow); on GIL builds these tests still pin the semantics (a private snapshot of
custom builtins, matching add_tool pairs, a drop racing executions).
"""

from __future__ import annotations

import os
import sys
import sysconfig
import threading

import pytest
import teardown_ref
from ref_support import (
    HANDOFF_BOUND,
    SUBPROCESS_TIMEOUT,
    assert_all_released,
    own_counters,
    thread_count,
    wait_for,
)

THREADS = 4
ROUNDS = 100


def run_threads(targets: list[threading.Thread]) -> None:
    for t in targets:
        t.start()
    for t in targets:
        t.join(SUBPROCESS_TIMEOUT)
    alive = [t.name for t in targets if t.is_alive()]
    assert not alive, f"{len(alive)}/{len(targets)} threads still running: {alive}"


def gil_enabled() -> bool:
    is_enabled = getattr(sys, "_is_gil_enabled", None)  # 3.13+
    return True if is_enabled is None else bool(is_enabled())


def test_import_keeps_the_gil_as_the_build_has_it():
    """On a free-threaded build the import must not turn the GIL back on (the module's slot
    says Py_MOD_GIL_NOT_USED; PYTHON_GIL=1 would force it on regardless)."""
    free_threaded = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    if free_threaded and os.environ.get("PYTHON_GIL") != "1":
        assert not gil_enabled(), "importing teardown_ref re-enabled the GIL"
    else:
        assert gil_enabled()


def test_add_tool_races_execute_sync():
    """One thread keeps replacing a tool's callback while others execute it: every execution
    runs one of the callbacks (a lookup holds its own reference to the callback)."""
    tool = teardown_ref.ScriptedTool("race")
    tool.add_tool("t", "first", lambda params, stdin: "0\n")
    errors: list[str] = []

    def replace() -> None:
        for i in range(ROUNDS):
            tool.add_tool("t", f"version {i}", lambda params, stdin, i=i: f"{i}\n")

    def execute() -> None:
        for _ in range(ROUNDS):
            r = tool.execute_sync("t")
            if r.exit_code != 0 or not r.stdout.strip().isdigit():
                errors.append(f"exit {r.exit_code} stdout {r.stdout!r} stderr {r.stderr!r}")

    workers = [threading.Thread(target=execute) for _ in range(THREADS - 1)]
    run_threads([threading.Thread(target=replace), *workers])
    assert not errors, f"{len(errors)}/{(THREADS - 1) * ROUNDS} executions failed: {errors[:3]}"
    assert tool.execute_sync("t").stdout == f"{ROUNDS - 1}\n"


def test_custom_builtins_are_a_validated_snapshot():
    """Bash validates and installs one private copy of custom_builtins: a mapping cannot show
    validation one set of items and the install another, and later changes to the caller's
    dict do not reach the tool."""

    class TwoFaced(dict):  # stored items are valid; iteration shows "ls" -> 42
        def __iter__(self):  # type: ignore[override]
            return iter(["ls"])

        def keys(self):  # type: ignore[override]
            return ["ls"]

        def __getitem__(self, key):  # type: ignore[override]
            return 42

    with pytest.raises(TypeError, match="callback for 'ls' must be callable, not int"):
        teardown_ref.Bash(custom_builtins=TwoFaced(q=lambda ctx: "ok"))

    builtins = {"q": lambda ctx: "ok"}
    bash = teardown_ref.Bash(custom_builtins=builtins)
    builtins["late"] = lambda ctx: "late"
    assert bash.execute_sync("q").stdout == "ok"
    assert bash.execute_sync("late").exit_code == 127


def test_bash_construction_races_mutation_of_its_builtins():
    """Another thread mutates the custom_builtins dict while tools are built from it: each
    construction either succeeds or rejects the invalid entry it saw, never crashes."""
    builtins = {f"b{i}": (lambda ctx: "ok") for i in range(20)}
    stop = threading.Event()
    outcomes: list[str] = []

    def mutate() -> None:
        i = 0
        while not stop.is_set():
            builtins[f"x{i % 50}"] = 42 if i % 7 == 0 else (lambda ctx: "ok")
            builtins.pop(f"x{(i + 25) % 50}", None)
            i += 1

    def construct() -> None:
        for _ in range(ROUNDS):
            try:
                bash = teardown_ref.Bash(custom_builtins=builtins)
            except TypeError as exc:
                assert "must be callable, not int" in str(exc), exc
                outcomes.append("rejected")
                continue
            assert bash.execute_sync("b0").stdout == "ok"
            outcomes.append("built")

    mutator = threading.Thread(target=mutate)
    mutator.start()
    try:
        run_threads([threading.Thread(target=construct) for _ in range(THREADS - 1)])
    finally:
        stop.set()
        mutator.join(SUBPROCESS_TIMEOUT)
    assert len(outcomes) == (THREADS - 1) * ROUNDS, outcomes[-5:]


@pytest.mark.parametrize("kind", ["ScriptedTool", "Bash"])
def test_last_reference_dropped_while_other_threads_execute(kind):
    """The creating thread drops its reference while others are executing on the tool: the
    last executing thread's reference runs the teardown, and everything is released."""
    baseline_threads = thread_count()
    if kind == "ScriptedTool":
        tool = teardown_ref.ScriptedTool("shared")
        tool.add_tool("q", "", lambda params, stdin: "ok")
    else:
        tool = teardown_ref.Bash(custom_builtins={"q": lambda ctx: "ok"})
    started = threading.Barrier(THREADS)
    errors: list[str] = []

    def execute(t: object) -> None:
        started.wait(SUBPROCESS_TIMEOUT)
        for _ in range(ROUNDS // 4):
            r = t.execute_sync("q")  # type: ignore[attr-defined]
            if r.stdout != "ok":
                errors.append(repr(r.stdout))

    workers = [threading.Thread(target=execute, args=(tool,)) for _ in range(THREADS - 1)]
    for w in workers:
        w.start()
    del tool  # the workers' references keep it alive; the last one to finish tears it down
    started.wait(SUBPROCESS_TIMEOUT)
    for w in workers:
        w.join(SUBPROCESS_TIMEOUT)
    assert not any(w.is_alive() for w in workers), "executing threads still running"
    assert not errors, f"{len(errors)} executions failed: {errors[:3]}"
    # Polled, not asserted at once: a free-threaded build may defer a decref made on another
    # thread to the creating thread (this one), which runs it at its next eval-breaker check.
    wait_for(lambda: not any(own_counters().values()), HANDOFF_BOUND, "teardown ran")
    assert_all_released("after the last executing thread returned")
    wait_for(lambda: thread_count() <= baseline_threads, HANDOFF_BOUND, "native threads joined")
