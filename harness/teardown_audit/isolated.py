"""Run an in-process check in a fresh child interpreter under run_bounded.

Why a child: the check loads the target into the process it measures (threads and fds are
per-process), and a target that deadlocks or crashes must cost one verdict, not the harness.
The parent gets a hang diagnosis (stacks before the kill) or the crash signal for free.

Protocol: `python -m teardown_audit.isolated CHECK TARGET PARAMS_JSON` prints one line
`MARKER {verdict json}` on stdout, then leaves with os._exit(0) so that interpreter-exit
behaviour (audited separately by exit stress) cannot change the verdict.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Mapping, Sequence
from typing import Any, Callable

import teardown_audit
from teardown_audit.adapters import Adapter, TargetError, load_adapter
from teardown_audit.proc import RunResult, reproduce_command, run_bounded
from teardown_audit.verdict import FAIL, Verdict, errored, failed

MARKER = "TEARDOWN_AUDIT_VERDICT"
PHASE_MARKER = "TEARDOWN_AUDIT_PHASE"
HARNESS_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(teardown_audit.__file__)))

# check name → in-process function(adapter, params) -> Verdict; filled by the check modules.
_in_child = False
CHILD_CHECKS: dict[str, Callable[[Adapter, Mapping[str, Any]], Verdict]] = {}


def phase(description: str) -> None:
    """Announce what the child is about to do, so a hang is reported with the step that hung.
    Silent when a check runs in the caller's own process (pytest fixtures)."""
    if _in_child:
        print(PHASE_MARKER, description, flush=True)


def last_phase(stdout: str) -> str | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith(PHASE_MARKER + " "):
            return line[len(PHASE_MARKER) + 1 :]
    return None


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for every child: the harness importable, whatever the current directory."""
    env = dict(os.environ)
    paths = [HARNESS_ROOT, *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env.update(extra or {})
    return env


def isolated_argv(
    python: str, check: str, target: str, params: Mapping[str, Any], flags: Sequence[str] = ()
) -> list[str]:
    return [python, *flags, "-m", "teardown_audit.isolated", check, target, json.dumps(params)]


def run_isolated(
    check: str,
    target: str,
    params: Mapping[str, Any],
    *,
    python: str,
    timeout: float,
    flags: Sequence[str] = (),
) -> tuple[Verdict, RunResult]:
    """Run CHECK in a child; turn a hang, a crash or missing output into a failed verdict."""
    argv = isolated_argv(python, check, target, params, flags)
    env = child_env()
    result = run_bounded(argv, timeout=timeout, env=env)
    repro = reproduce_command(argv, {"PYTHONPATH": env["PYTHONPATH"]})
    verdict = verdict_from_run(check, result, timeout)
    verdict.repro = verdict.repro or repro
    verdict.elapsed = result.elapsed
    return verdict, result


def verdict_from_run(check: str, result: RunResult, timeout: float) -> Verdict:
    if result.timed_out:
        evidence = [f"child killed after {timeout:g} s"]
        diagnosis = "no stacks captured"
        if result.hang is not None:
            diagnosis = result.hang.diagnosis or diagnosis
            evidence += result.hang.format().splitlines()
        step = last_phase(result.stdout)
        during = f" during {step}" if step else ""
        return failed(
            check,
            f"hang{during}: no verdict within {timeout:g} s — {diagnosis}",
            evidence=evidence,
            data={"process": "hang"},
        )
    for line in reversed(result.stdout.splitlines()):
        if line.startswith(MARKER + " "):
            return Verdict.from_dict(json.loads(line[len(MARKER) + 1 :]))
    tail = result.stderr.strip().splitlines()[-15:]
    if result.signal:
        step = last_phase(result.stdout) or "the check"
        return failed(
            check,
            f"child killed by {result.signal} during {step}",
            evidence=tail,
            data={"process": "signal"},
        )
    return errored(
        check,
        f"child gave no verdict (exit {result.returncode})",
        evidence=tail,
        data={"process": "no verdict"},
    )


def _child_main(argv: Sequence[str]) -> int:
    # Import the check modules so they register themselves in CHILD_CHECKS.
    import teardown_audit.audit  # noqa: F401  (imports every check module)

    global _in_child
    _in_child = True
    check, target, params = argv[0], argv[1], json.loads(argv[2])
    try:
        adapter = load_adapter(target)
        verdict = CHILD_CHECKS[check](adapter, params)
    except TargetError as exc:
        verdict = errored(check, str(exc))
    except Exception as exc:
        verdict = errored(check, f"{type(exc).__name__}: {exc}", evidence=_tb_lines())
    print(MARKER, json.dumps(verdict.to_dict()), flush=True)
    sys.stderr.flush()
    os._exit(0)


def _tb_lines() -> list[str]:
    return traceback.format_exc().strip().splitlines()[-10:]


if __name__ == "__main__":
    # `python -m` runs this file as __main__, a second copy of the module: use the real one's
    # registry so the checks registered on import are found.
    from teardown_audit import isolated as _real

    sys.exit(_real._child_main(sys.argv[1:]))

__all__ = ["CHILD_CHECKS", "FAIL", "child_env", "run_isolated"]
