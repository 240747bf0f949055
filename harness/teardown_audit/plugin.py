"""pytest plugin (entry point pytest11): teardown-determinism fixtures and a hang watchdog.

Fixtures, so an extension's own tests can assert determinism in a few lines:

    def test_drop_joins_everything(teardown_probe):
        with teardown_probe.no_growth():        # threads and fds must not grow across the block
            tool = myext.Tool(); tool.run(); del tool

    def test_audit_checks(teardown_checks):
        teardown_checks.require(teardown_checks.threads(MyAdapter()))    # in this process
        teardown_checks.require(teardown_checks.run("interpreter-exit-stress", "myadapter.py"))

Watchdog: `--teardown-watchdog=SECONDS` (ini `teardown_watchdog`, env TEARDOWN_WATCHDOG, marker
`@pytest.mark.teardown_watchdog(seconds)`; precedence marker > option > env > ini; 0 disables)
guards every test with teardown_audit.watchdog.ExternalWatchdog: a test still running after
SECONDS gets its Python and native stacks and a deadlock diagnosis written to stderr (and to
`<rootdir>/teardown-watchdog.txt`), then the frozen process is killed — the CI job ends with the
report instead of hanging for hours. A GIL deadlock cannot be interrupted from inside the process,
which is why the watchdog is a separate process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
from collections.abc import Generator, Iterator
from typing import Any

import pytest

from teardown_audit.adapters import Adapter
from teardown_audit.checks import cancellation, fds, threads
from teardown_audit.isolated import run_isolated
from teardown_audit.probes import (
    FdSnapshot,
    ThreadInfo,
    fd_diff,
    fd_snapshot,
    live_threads,
)
from teardown_audit.settings import AuditSettings
from teardown_audit.verdict import Verdict

WATCHDOG_HELP = (
    "guard every test with an external hang watchdog: after SECONDS, write Python + native "
    "stacks and a deadlock diagnosis, then kill the frozen run (0 = off). Also env "
    "TEARDOWN_WATCHDOG and marker @pytest.mark.teardown_watchdog(seconds)."
)
ENV_VAR = "TEARDOWN_WATCHDOG"
INI_NAME = "teardown_watchdog"
MARKER = "teardown_watchdog"
REPORT_NAME = "teardown-watchdog.txt"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("teardown-audit")
    group.addoption(
        "--teardown-watchdog", metavar="SECONDS", dest="teardown_watchdog", help=WATCHDOG_HELP
    )
    parser.addini(INI_NAME, WATCHDOG_HELP)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(seconds): hang watchdog bound for this test (overrides the option)"
    )
    # Validate now so a bad value is one usage error, not a failure in every test.
    config.stash[_DEFAULT_KEY] = _session_default(config)


def parse_seconds(raw: object, source: str) -> float:
    """A non-negative finite number of seconds; 0 turns the watchdog off."""
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise pytest.UsageError(f"{source}: not a number of seconds: {raw!r}") from None
    if not math.isfinite(value) or value < 0:
        raise pytest.UsageError(f"{source}: must be a finite number >= 0, got {raw!r}")
    return value


def _session_default(config: pytest.Config) -> float:
    """Option > env > ini; 0.0 when none is set."""
    option = config.getoption("teardown_watchdog")
    if option is not None:
        return parse_seconds(option, "--teardown-watchdog")
    env = os.environ.get(ENV_VAR)
    if env:
        return parse_seconds(env, ENV_VAR)
    ini = config.getini(INI_NAME)
    if ini:
        return parse_seconds(ini, f"ini {INI_NAME}")
    return 0.0


_DEFAULT_KEY = pytest.StashKey[float]()
_WATCHDOG_KEY = pytest.StashKey[Any]()


def watchdog_seconds(item: pytest.Item) -> float:
    """The bound for one test: its marker if any, else the session default."""
    marker = item.get_closest_marker(MARKER)
    if marker is not None:
        if not marker.args:
            raise pytest.UsageError(f"{item.nodeid}: @{MARKER} needs the number of seconds")
        return parse_seconds(marker.args[0], f"{item.nodeid}: @{MARKER}")
    return item.config.stash.get(_DEFAULT_KEY, 0.0)


def _watchdog_for(config: pytest.Config) -> Any:
    """One watcher process per session, re-armed per test."""
    watchdog = config.stash.get(_WATCHDOG_KEY, None)
    if watchdog is None:
        from teardown_audit.watchdog import ExternalWatchdog

        report = os.path.join(str(config.rootpath), REPORT_NAME)
        watchdog = ExternalWatchdog(1.0, "pytest", report_path=report, **_terminal_fd(config))
        config.stash[_WATCHDOG_KEY] = watchdog
    return watchdog


def _terminal_fd(config: pytest.Config) -> dict[str, int]:
    # Under fd capture, fd 2 is a temp file while a test runs; the report must reach the terminal.
    capman = config.pluginmanager.getplugin("capturemanager")
    capturing = getattr(capman, "_global_capturing", None)
    saved = getattr(getattr(capturing, "err", None), "targetfd_save", None)
    return {"stderr_fd": saved} if isinstance(saved, int) else {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, None, None]:
    seconds = watchdog_seconds(item)
    if seconds <= 0:
        yield
        return
    watchdog = _watchdog_for(item.config)
    watchdog.seconds, watchdog.label = seconds, item.nodeid
    watchdog.arm()
    try:
        yield  # setup, call and teardown: a fixture's teardown can deadlock too
    finally:
        watchdog.disarm()


def pytest_unconfigure(config: pytest.Config) -> None:
    watchdog = config.stash.get(_WATCHDOG_KEY, None)
    if watchdog is not None:
        watchdog.close()


# ---------------------------------------------------------------------------------------------
# Fixtures


class TeardownProbe:
    """Threads and fds of this process, and a no-growth assertion around a block."""

    def threads(self) -> list[ThreadInfo]:
        return live_threads()

    def fds(self) -> FdSnapshot:
        return fd_snapshot()

    @contextlib.contextmanager
    def no_growth(
        self, *, threads: bool = True, fds: bool = True, cycles: int = 1
    ) -> Iterator[None]:
        """Fail the test if the block ends with more live threads or open fds than it started
        with (one-directional: fewer is fine). `cycles` only scales the message."""
        before_threads, before_fds = live_threads(), fd_snapshot()
        yield
        problems = []
        if threads:
            after = live_threads()
            if len(after) > len(before_threads):
                old = {t.tid for t in before_threads}
                new = ", ".join(t.describe() for t in after if t.tid not in old)
                problems.append(
                    f"+{len(after) - len(before_threads)} threads after the block: {new}"
                )
        if fds:
            diff = fd_diff(before_fds, fd_snapshot(), cycles)
            if diff.net > 0:
                problems.append(diff.summary())
        if problems:
            pytest.fail("teardown not deterministic: " + "; ".join(problems), pytrace=False)


class TeardownChecks:
    """Run the audit's checks from a test. In-process variants measure this very process (use a
    fresh pytest worker, or prefer `run()`, which uses a child process like the CLI)."""

    def __init__(self, settings: AuditSettings) -> None:
        self.settings = settings

    def threads(self, adapter: Adapter, cycles: int = 5) -> Verdict:
        adapter.load()
        no_gc = threads.measure_threads(adapter, cycles, collect=False)
        with_gc = threads.measure_threads(adapter, cycles, collect=True)
        return threads.threads_verdict(no_gc, with_gc, cycles)

    def fds(self, adapter: Adapter, cycles: int = 20) -> Verdict:
        adapter.load()
        no_gc = fds.measure_fds(adapter, cycles, collect=False)
        with_gc = fds.measure_fds(adapter, cycles, collect=True)
        return fds.fds_verdict(no_gc, with_gc, cycles)

    def cancellation(self, adapter: Adapter, bound: float = 5.0) -> Verdict:
        adapter.load()
        return cancellation.check_in_process(adapter, {"bound": bound})

    def run(self, check: str, target: str, **settings: Any) -> Verdict:
        """Any audit check by name on a --target spec, in subprocesses exactly as the CLI does."""
        from teardown_audit.checks import AUDIT_CHECKS

        if check not in AUDIT_CHECKS:
            raise ValueError(f"unknown check {check!r}; known: {', '.join(AUDIT_CHECKS)}")
        chosen = dataclasses.replace(self.settings, target=target, **settings)
        return AUDIT_CHECKS[check](chosen, None)

    def run_isolated(self, check: str, target: str, params: dict[str, Any]) -> Verdict:
        verdict, _ = run_isolated(
            check, target, params, python=self.settings.python, timeout=self.settings.child_timeout
        )
        return verdict

    @staticmethod
    def require(verdict: Verdict) -> Verdict:
        """Fail the test with the verdict's reason, evidence and reproduction unless it passed."""
        if not verdict.ok:
            lines = [f"{verdict.check}: {verdict.status}: {verdict.reason}", *verdict.evidence[:20]]
            if verdict.repro:
                lines.append(f"reproduce: {verdict.repro}")
            pytest.fail("\n".join(lines), pytrace=False)
        return verdict


@pytest.fixture
def teardown_probe() -> TeardownProbe:
    return TeardownProbe()


@pytest.fixture
def teardown_checks() -> TeardownChecks:
    return TeardownChecks(AuditSettings())


__all__ = ["TeardownChecks", "TeardownProbe", "teardown_checks", "teardown_probe"]
