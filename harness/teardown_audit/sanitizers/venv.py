"""A tooling virtual environment per interpreter for sanitizer runs: `.venv/san-<tag>`.

    python -m teardown_audit.sanitizers.venv PYTHON [--root .venv]   → prints the venv's python

The venv holds only the tools (setuptools + wheel, so builds need no isolation; pytest): the
extension under test is never installed in it, it comes from the instrumented build's `site`.
Keyed by full version + ABI flags, so pyenv's 3.11.7 and Debian's 3.11.2 get separate venvs.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from teardown_audit.proc import run_bounded
from teardown_audit.sanitizers.build import interpreter_tag

TOOLS = ("setuptools>=64", "wheel", "pytest>=8.3,<9")
VENV_TIMEOUT = 600.0  # venv + pip from PyPI on a loaded machine


def ensure_venv(python: str, root: str = ".venv") -> str:
    """Create (once) the tooling venv for `python`; return the path of its interpreter."""
    tag = interpreter_tag(python)
    venv = os.path.abspath(os.path.join(root, f"san-{tag}"))
    vpy = os.path.join(venv, "bin", "python")
    stamp = os.path.join(venv, ".san-tools")
    if os.path.exists(stamp):
        return vpy
    steps = [
        [python, "-m", "venv", venv],
        [vpy, "-m", "pip", "install", "-q", "--disable-pip-version-check", *TOOLS],
    ]
    for argv in steps:
        result = run_bounded(argv, timeout=VENV_TIMEOUT, capture_stacks=False)
        if result.returncode != 0:
            tail = (result.stdout + result.stderr).strip().splitlines()[-10:]
            raise RuntimeError(
                f"{' '.join(argv[:4])} failed ({result.verdict}): " + " | ".join(tail)
            )
    with open(stamp, "w", encoding="utf-8") as f:
        f.write(" ".join(TOOLS) + "\n")
    return vpy


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="teardown_audit.sanitizers.venv")
    parser.add_argument("python")
    parser.add_argument("--root", default=".venv")
    args = parser.parse_args(argv)
    try:
        print(ensure_venv(args.python, args.root))
    except (RuntimeError, ValueError, OSError) as exc:
        print(f"teardown-audit: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
