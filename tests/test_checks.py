"""Every check passes on the correct target and FAILS with the right diagnosis on a broken one.

Targets are the pure-Python look-alikes in tests/targets/ (and teardown_ref when it is built).
Bounds are safety nets only: a hang bound for the deadlocking targets, a cancellation bound far
above the milliseconds a correct drop takes.
"""

from __future__ import annotations

import dataclasses
import os

import pytest
from teardown_audit.checks import cancellation, churn, exit_stress, fds, strict_warnings, threads
from teardown_audit.exit_runs import FATAL, HANG, NONZERO, OK, SIGNAL, WARNING, classify
from teardown_audit.proc import RunResult
from teardown_audit.settings import AuditSettings

TARGETS = os.path.join(os.path.dirname(__file__), "targets")

# Small sizes; hang bounds short enough for a test run, far above what a correct target needs.
BASE = AuditSettings(
    thread_cycles=4,
    fd_cycles=6,
    exit_runs=3,
    churn_threads=3,
    churn_iterations=6,
    strict_runs=1,
    cancel_bound=3.0,
    child_timeout=30.0,
    exit_timeout=20.0,
)
HANG_BOUND = 6.0


def settings(name: str, **kw: object) -> AuditSettings:
    return dataclasses.replace(BASE, target=os.path.join(TARGETS, f"target_{name}.py"), **kw)


# -- threads -----------------------------------------------------------------------------------


def test_threads_pass_on_correct_target_without_gc_and_with_exact_counters():
    v = threads.run(settings("correct"))
    assert v.status == "pass", v.reason
    assert "gc not needed" in v.reason and "exact mode: counters back to baseline" in v.reason
    assert v.data["gc_needed"] is False and v.data["exact_mode"] is True


def test_threads_fail_on_a_thread_leak_per_drop():
    v = threads.run(settings("leaks_thread"))
    assert v.status == "fail"
    assert v.reason.startswith("+1 thread per cycle after drop, with and without gc.collect()")
    assert "'fake-pool'" in v.reason and v.reason.endswith("threads not joined")
    assert v.repro and "teardown_audit.isolated threads-joined-on-drop" in v.repro


def test_threads_fail_and_say_gc_was_needed_for_a_reference_cycle():
    v = threads.run(settings("ref_cycle"))
    assert v.status == "fail"
    assert "without gc.collect(), none with it" in v.reason
    assert "threads joined only at a GC pass" in v.reason
    assert v.data["gc_needed"] is True


def test_threads_exact_mode_fails_on_counters_that_do_not_return():
    v = threads.run(settings("stale_counter"))
    assert v.status == "fail"
    assert v.reason.startswith(
        "exact mode: counters not back to baseline after drop (workers +1 per cycle)"
    )
    assert "/proc/self/task did not grow" in v.reason


# -- fds ---------------------------------------------------------------------------------------


def test_fds_pass_on_correct_target():
    v = fds.run(settings("correct"))
    assert v.status == "pass", v.reason
    assert v.data["gc_needed"] is False


def test_fds_fail_with_classified_diff_on_a_leaked_loop():
    v = fds.run(settings("leaks_loop"))
    assert v.status == "fail"
    assert v.reason == (
        "+3 fds per cycle: 1 eventpoll, 2 socket — an asyncio loop not closed "
        "(with and without gc.collect())"
    )
    assert any("eventpoll: anon_inode:[eventpoll]" in line for line in v.evidence)


def test_fds_fail_when_only_a_gc_pass_frees_the_loop():
    v = fds.run(settings("unclosed_loop"))
    assert v.status == "fail"
    assert v.reason.startswith(
        "+3 fds per cycle: 1 eventpoll, 2 socket — an asyncio loop not closed"
    )
    assert "fds freed only at a GC pass, not by the drop" in v.reason
    assert v.data["gc_needed"] is True


# -- bounded cancellation ----------------------------------------------------------------------


def test_cancellation_passes_on_correct_target():
    v = cancellation.run(settings("correct"))
    assert v.status == "pass", v.reason
    assert v.data["cancelled"] is True and v.data["drop_seconds"] < BASE.cancel_bound
    assert "CancelledError seen" in v.reason


def test_cancellation_fails_when_the_drop_leaves_the_callback_running():
    v = cancellation.run(settings("no_cancel"))
    assert v.status == "fail"
    assert v.reason.startswith("abandoned callback not cancelled within 3 s of the drop")
    assert "CancelledError not observed" in v.reason
    assert v.data["cancelled"] is False


def test_cancellation_reports_a_deadlocked_drop_as_a_diagnosed_hang():
    v = cancellation.run(settings("drop_deadlock", child_timeout=HANG_BOUND))
    assert v.status == "fail"
    assert v.reason.startswith(
        "hang during the drop of a tool with an abandoned callback: no verdict within 6 s"
    )
    assert any("diagnosis" in line for line in v.evidence)


# -- interpreter-exit stress -------------------------------------------------------------------


def test_exit_stress_passes_on_correct_target():
    v = exit_stress.run(settings("correct"))
    assert v.status == "pass", v.reason
    assert v.reason == "all 6 exits clean (clean: 3/3 ok; abandoned: 3/3 ok)"


def test_exit_stress_names_the_signal():
    v = exit_stress.run(settings("exit_segv"))
    assert v.status == "fail"
    assert v.reason == "clean: 3/3 ok; abandoned: 3/3 signal SIGSEGV"
    assert v.repro and v.repro.endswith("exit_abandoned.py")


def test_exit_stress_quotes_a_fatal_python_error():
    v = exit_stress.run(settings("exit_fatal"))
    assert v.status == "fail"
    assert v.reason == "clean: 3/3 ok; abandoned: 3/3 fatal error"
    assert any(
        '"Fatal Python error: PyGILState_Release: thread state must be current"' in line
        for line in v.evidence
    )


def test_exit_stress_reports_a_hang_with_stacks():
    v = exit_stress.run(settings("exit_hang", exit_runs=1, exit_timeout=3.0))
    assert v.status == "fail"
    assert v.reason == "clean: 1/1 hang; abandoned: 1/1 hang"
    assert any("diagnosis" in line for line in v.evidence)


def _result(**kw: object) -> RunResult:
    base = dict(argv=["python"], returncode=0, stdout="", stderr="", elapsed=0.1, timed_out=False,
                signal=None, hang=None)  # fmt: skip
    base.update(kw)
    return RunResult(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({}, (OK, "")),
        ({"returncode": 3}, (NONZERO, "3")),
        ({"returncode": -11, "signal": "SIGSEGV",
          "stderr": "Fatal Python error: Segmentation fault\n"}, (SIGNAL, "SIGSEGV")),
        ({"returncode": -6, "signal": "SIGABRT",
          "stderr": "Fatal Python error: PyGILState_Release: x\nFatal Python error: Aborted\n"},
         (FATAL, '"Fatal Python error: PyGILState_Release: x"')),
        ({"stderr": "Exception ignored in: <function X.__del__>\n"},
         (WARNING, "Exception ignored in: <function X.__del__>")),
        ({"stderr": "x.py:1: ResourceWarning: unclosed file\n"},
         (WARNING, "x.py:1: ResourceWarning: unclosed file")),
        ({"timed_out": True, "returncode": None}, (HANG, "no stacks captured")),
    ],
)  # fmt: skip
def test_classify_each_exit_class(kw, expected):
    assert classify(_result(**kw)) == expected


# -- concurrent churn --------------------------------------------------------------------------


def test_churn_passes_on_correct_target():
    v = churn.run(settings("correct"))
    assert v.status == "pass", v.reason
    assert v.reason == "18 mixed operations on 3 threads: no deadlock, no error, no leftover thread"


def test_churn_turns_a_deadlock_into_a_diagnosed_hang():
    v = churn.run(settings("drop_deadlock", child_timeout=HANG_BOUND))
    assert v.status == "fail"
    assert v.reason.startswith("hang during churn repeat 1/1: 3 threads x 6 iterations")
    assert any("diagnosis" in line for line in v.evidence)
    assert v.repro and "concurrent-churn" in v.repro


def test_churn_fails_when_abandoned_callbacks_outlive_their_tools():
    v = churn.run(settings("no_cancel"))
    assert v.status == "fail"
    assert "threads still alive after 18 operations" in v.reason


# -- strict warnings ---------------------------------------------------------------------------


def test_strict_warnings_pass_on_correct_target():
    v = strict_warnings.run(settings("correct"))
    assert v.status == "pass", v.reason


def test_strict_warnings_fail_on_a_resource_warning():
    v = strict_warnings.run(settings("unclosed_loop"))
    assert v.status == "fail"
    assert v.reason.startswith("in-process scenario under -X dev -W error::ResourceWarning: ")
    assert "Exception ignored in" in v.reason or "ResourceWarning" in v.reason
    assert any("ResourceWarning: unclosed event loop" in line for line in v.evidence)


# -- the reference extension -------------------------------------------------------------------


@pytest.mark.parametrize(
    "check", [threads, fds, cancellation, exit_stress, churn, strict_warnings], ids=lambda m: m.NAME
)
def test_every_check_passes_on_teardown_ref(check):
    pytest.importorskip("teardown_ref", reason="teardown_ref is not built yet (make install)")
    v = check.run(dataclasses.replace(BASE, target="teardown_ref"))
    assert v.status == "pass", f"{v.reason}\n" + "\n".join(v.evidence)
