"""The audit's checks, in the order `teardown-audit audit` runs them. One module per check.

Each module has `NAME` and `run(settings[, progress]) -> Verdict`; the in-process halves register
themselves in teardown_audit.isolated.CHILD_CHECKS for the child process.
"""

from __future__ import annotations

from typing import Callable, Optional

from teardown_audit.checks import (
    cancellation,
    churn,
    exit_stress,
    fds,
    own_thread_drop,
    queued,
    strict_warnings,
    threads,
)
from teardown_audit.settings import AuditSettings
from teardown_audit.verdict import Verdict

Progress = Callable[[int, int], None]
CheckRunner = Callable[[AuditSettings, Optional[Progress]], Verdict]


def _no_progress(run: Callable[[AuditSettings], Verdict]) -> CheckRunner:
    return lambda settings, progress: run(settings)


AUDIT_CHECKS: dict[str, CheckRunner] = {
    threads.NAME: _no_progress(threads.run),
    fds.NAME: _no_progress(fds.run),
    cancellation.NAME: _no_progress(cancellation.run),
    queued.NAME: _no_progress(queued.run),
    own_thread_drop.NAME: _no_progress(own_thread_drop.run),
    exit_stress.NAME: exit_stress.run,
    churn.NAME: _no_progress(churn.run),
    strict_warnings.NAME: strict_warnings.run,
}
