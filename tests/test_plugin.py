"""The pytest plugin: probe and check fixtures, and the --teardown-watchdog option."""

from __future__ import annotations

import os
import sys
from importlib import metadata

import pytest
from teardown_audit.isolated import HARNESS_ROOT

pytest_plugins = ["pytester"]

TARGETS = os.path.join(os.path.dirname(__file__), "targets")


def _plugin_installed() -> bool:
    try:
        eps = metadata.entry_points()
        group = eps.select(group="pytest11") if hasattr(eps, "select") else eps.get("pytest11", [])
    except Exception:
        return False
    return any(ep.value == "teardown_audit.plugin" for ep in group)


# Installed (make test): pytest loads the plugin by its entry point; from a source tree: by name.
PLUGIN_ARGS = () if _plugin_installed() else ("-p", "teardown_audit.plugin")


@pytest.fixture
def run(pytester, monkeypatch):
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([HARNESS_ROOT, TARGETS, os.environ.get("PYTHONPATH", "")])
    )
    monkeypatch.delenv("TEARDOWN_WATCHDOG", raising=False)
    pytester.syspathinsert(TARGETS)  # in-process runs; PYTHONPATH above serves subprocess runs

    def go(*args: str, subprocess: bool = False):
        if subprocess:
            return pytester.runpytest_subprocess(*PLUGIN_ARGS, *args, timeout=120)
        return pytester.runpytest(*PLUGIN_ARGS, *args)

    return go


def test_probe_no_growth_passes_a_clean_block_and_fails_leaks(pytester, run):
    pytester.makepyfile(
        """
        import asyncio, threading

        def test_clean(teardown_probe):
            with teardown_probe.no_growth():
                loop = asyncio.new_event_loop()
                loop.close()

        def test_leaked_loop(teardown_probe):
            with teardown_probe.no_growth():
                test_leaked_loop.loop = asyncio.new_event_loop()

        def teardown_module():
            test_leaked_loop.loop.close()

        def test_leaked_thread(teardown_probe):
            stop = threading.Event()
            with teardown_probe.no_growth():
                threading.Thread(target=stop.wait, daemon=True).start()
        """
    )
    result = run("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*teardown not deterministic: +3 fds: 1 eventpoll, 2 socket — an asyncio loop not*",
            "*teardown not deterministic: +1 threads after the block: tid * (*)*",
        ]
    )


def test_checks_fixture_runs_checks_and_require_fails_with_the_reason(pytester, run):
    pytester.makepyfile(
        f"""
        import os
        import target_correct, target_leaks_thread
        TARGETS = {TARGETS!r}

        def test_in_process_pass(teardown_checks):
            teardown_checks.require(teardown_checks.threads(target_correct.ADAPTER))
            teardown_checks.require(teardown_checks.fds(target_correct.ADAPTER, cycles=5))
            teardown_checks.require(teardown_checks.cancellation(target_correct.ADAPTER))

        def test_isolated_fail(teardown_checks):
            target = os.path.join(TARGETS, "target_leaks_thread.py")
            teardown_checks.require(teardown_checks.run("threads-joined-on-drop", target))
        """
    )
    result = run("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*threads-joined-on-drop: fail: +1 thread per cycle after drop*", "*reproduce: *"]
    )


def test_watchdog_precedence_marker_over_option_over_env_over_ini(pytester, run, monkeypatch):
    pytester.makeini("[pytest]\nteardown_watchdog = 400\n")
    pytester.makepyfile(
        """
        import pytest
        from teardown_audit.plugin import watchdog_seconds

        @pytest.mark.teardown_watchdog(100)
        def test_marker(request):
            print("SECONDS", watchdog_seconds(request.node))

        def test_default(request):
            print("SECONDS", watchdog_seconds(request.node))
        """
    )
    result = run("-s", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*SECONDS 100.0*", "*SECONDS 400.0*"])
    monkeypatch.setenv("TEARDOWN_WATCHDOG", "300")
    result = run("-s", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*SECONDS 100.0*", "*SECONDS 300.0*"])
    result = run("-s", "-p", "no:cacheprovider", "--teardown-watchdog=200")
    result.stdout.fnmatch_lines(["*SECONDS 100.0*", "*SECONDS 200.0*"])
    result.assert_outcomes(passed=2)


def test_watchdog_help_is_shared_by_option_and_ini(pytester, run):
    result = run("--help")
    text = result.stdout.str()
    assert text.count("guard every test with an external hang watchdog") == 2


@pytest.mark.parametrize("value", ["soon", "-1", "inf"])
def test_bad_watchdog_value_is_a_usage_error(pytester, run, value):
    pytester.makepyfile("def test_x():\n    pass\n")
    result = run(f"--teardown-watchdog={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--teardown-watchdog: *"])


def test_watchdog_turns_a_hung_test_into_a_report_and_ends_the_run(pytester, run):
    pytester.makepyfile(
        """
        import threading

        def test_hangs():
            threading.Event().wait()
        """
    )
    result = run("-p", "no:cacheprovider", "--teardown-watchdog=2", subprocess=True)
    assert result.ret != 0
    text = result.stdout.str() + result.stderr.str()
    assert "still running after 2" in text and "test_hangs" in text
    assert (pytester.path / "teardown-watchdog.txt").exists()


def test_watchdog_disarmed_tests_pass(pytester, run):
    pytester.makepyfile("import time\n\ndef test_quick():\n    time.sleep(0.2)\n")
    result = run("-p", "no:cacheprovider", "--teardown-watchdog=30", subprocess=True)
    result.assert_outcomes(passed=1)
    assert sys.executable  # the child uses the same interpreter as this run
