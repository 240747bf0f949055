"""Run the audit: check that the target is usable, then every check in order."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Callable

from teardown_audit.adapters import Adapter, TargetError, resolve_adapter
from teardown_audit.checks import AUDIT_CHECKS
from teardown_audit.isolated import CHILD_CHECKS, run_isolated
from teardown_audit.settings import AuditSettings
from teardown_audit.verdict import PASS, Verdict, errored, passed

LOAD_CHECK = "load-target"


def _load_in_process(adapter: Adapter, params: Mapping[str, Any]) -> Verdict:
    # load_adapter (in the child) already imported the extension; reaching here means it loads.
    return passed(LOAD_CHECK, f"target {adapter.name!r} loads", data={"name": adapter.name})


CHILD_CHECKS[LOAD_CHECK] = _load_in_process


def preflight(settings: AuditSettings) -> str:
    """Raise TargetError (one line) when the target cannot be audited; return its display name.
    The extension is imported in a child: an import that crashes costs a line, not the harness."""
    adapter = resolve_adapter(settings.target)
    verdict, _ = run_isolated(
        LOAD_CHECK, settings.target, {}, python=settings.python, timeout=settings.child_timeout
    )
    if verdict.status != PASS:
        raise TargetError(verdict.reason)
    return str(verdict.data.get("name", adapter.name))


StartHook = Callable[[str, int, int], None]
DoneHook = Callable[[Verdict, int, int], None]
Progress = Callable[[int, int], None]


def run_audit(
    settings: AuditSettings,
    checks: Sequence[str] | None = None,
    *,
    on_start: StartHook | None = None,
    on_done: DoneHook | None = None,
    progress: Progress | None = None,
) -> list[Verdict]:
    names = list(checks) if checks else list(AUDIT_CHECKS)
    unknown = [n for n in names if n not in AUDIT_CHECKS]
    if unknown:
        raise ValueError(f"unknown check {unknown[0]!r}; known: {', '.join(AUDIT_CHECKS)}")
    verdicts = []
    for index, name in enumerate(names, 1):
        if on_start:
            on_start(name, index, len(names))
        start = time.monotonic()
        try:
            verdict = AUDIT_CHECKS[name](settings, progress)
        except TargetError as exc:
            verdict = errored(name, str(exc))
        verdict.elapsed = time.monotonic() - start
        verdicts.append(verdict)
        if on_done:
            on_done(verdict, index, len(names))
    return verdicts
