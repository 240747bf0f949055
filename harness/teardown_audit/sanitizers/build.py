"""Building an instrumented extension for one interpreter, into a build directory of its own.

The source tree is copied first: setuptools builds in-tree (`build/temp.*`) and skips objects it
thinks are up to date, so building in a shared checkout could silently reuse uninstrumented
objects (and would race with anyone else building there). `pip install --target` then puts the
extension (and any pure-Python package of the project) in `<build_dir>/site`, which a run puts
first on PYTHONPATH. Reports point into the copy, deliberately: the quoted line is the line that
was compiled, even if someone edits the checkout while the run goes on.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Optional

from teardown_audit.proc import run_bounded
from teardown_audit.sanitizers.tools import Tool

# A full build of teardown_ref with -fsanitize takes ~10-30 s here; pip with build isolation may
# also download setuptools. Generous, as a hang bound.
BUILD_TIMEOUT = 900.0
PROBE_TIMEOUT = 60.0
BUILD_INFO = "build.json"  # what was built, from where: lets a later run reuse the build
_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "venv", "build", "dist", "*.egg-info", "__pycache__", ".ruff_cache",
    "*.so", "*.o", "reports", ".pytest_cache", ".mypy_cache", "node_modules",
)  # fmt: skip


class BuildError(Exception):
    """The instrumented build failed; the message has the compiler's output tail."""


@dataclass(frozen=True)
class Build:
    tool: str
    source: str  # the original source tree
    copy: str  # the copy that was compiled: report frames point here
    site: str  # what goes first on PYTHONPATH
    extensions: tuple[str, ...]  # the compiled modules in site


def interpreter_tag(python: str) -> str:
    """`py3.11.7`, `py3.11.2d`: version + ABI flags (pyenv 3.11.7 and Debian 3.11.2 differ)."""
    code = "import sys; print('py%d.%d.%d%s' % (*sys.version_info[:3], sys.abiflags))"
    result = run_bounded([python, "-I", "-c", code], timeout=PROBE_TIMEOUT, capture_stacks=False)
    if result.returncode != 0:
        raise ValueError(f"{python}: not a working Python interpreter ({result.verdict})")
    return result.stdout.strip()


def _has_setuptools(python: str) -> bool:
    code = "import setuptools, wheel"
    return run_bounded([python, "-I", "-c", code], timeout=PROBE_TIMEOUT).returncode == 0


def build_instrumented(
    source: str,
    python: str,
    tool: Tool,
    build_dir: str,
    *,
    extra_env: Optional[Mapping[str, str]] = None,
    timeout: float = BUILD_TIMEOUT,
) -> Build:
    """Build the project at `source` with `tool`'s flags for `python` into `build_dir`."""
    source, python = os.path.abspath(source), os.path.abspath(python)
    if not any(os.path.isfile(os.path.join(source, f)) for f in ("setup.py", "pyproject.toml")):
        raise ValueError(f"{source}: no setup.py or pyproject.toml (not a buildable project)")
    build_dir = os.path.abspath(build_dir)
    copy, site = os.path.join(build_dir, "src"), os.path.join(build_dir, "site")
    for path in (copy, site):
        shutil.rmtree(path, ignore_errors=True)  # always from scratch: no stale objects
    os.makedirs(build_dir, exist_ok=True)
    shutil.copytree(source, copy, ignore=_IGNORE, symlinks=True)
    flags = " ".join(tool.cflags)
    env = dict(os.environ)
    env.update(extra_env or {})
    # setuptools appends CFLAGS to both the compile and the link line, LDFLAGS to the link line.
    env["CFLAGS"] = f"{env.get('CFLAGS', '')} {flags}".strip()
    env["LDFLAGS"] = f"{env.get('LDFLAGS', '')} {flags}".strip()
    env.pop("LD_PRELOAD", None)  # the build itself runs uninstrumented
    argv = [python, "-m", "pip", "install", "--disable-pip-version-check", "--no-deps"]
    if _has_setuptools(python):
        argv.append("--no-build-isolation")  # offline-friendly when the venv has setuptools
    argv += ["--target", site, copy]
    result = run_bounded(argv, timeout=timeout, env=env, cwd=build_dir, capture_stacks=False)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-30:])
        raise BuildError(f"{tool.name} build of {source} for {python} failed "
                         f"({result.verdict}):\n{tail}")  # fmt: skip
    extensions = tuple(sorted(glob.glob(os.path.join(site, "**", "*.so"), recursive=True)))
    if not extensions:
        raise BuildError(f"{tool.name} build of {source}: no compiled extension in {site}")
    if tool.marker is not None:
        for ext in extensions:
            with open(ext, "rb") as f:
                if tool.marker not in f.read():
                    raise BuildError(
                        f"{ext} does not link {tool.marker.decode()}: the {tool.name} flags did "
                        "not reach the compiler (does the build ignore CFLAGS?)"
                    )
    with open(os.path.join(build_dir, BUILD_INFO), "w", encoding="utf-8") as f:
        json.dump({"tool": tool.name, "source": source, "python": python}, f)
    return Build(tool.name, source, copy, site, extensions)


def existing_build(build_dir: str, tool: Tool) -> Build:
    """A build made earlier by build_instrumented, for the same tool."""
    info_path = os.path.join(os.path.abspath(build_dir), BUILD_INFO)
    try:
        with open(info_path, encoding="utf-8") as f:
            info = json.load(f)
    except (OSError, ValueError):
        raise ValueError(
            f"{build_dir}: not a sanitizer build directory (no {BUILD_INFO})"
        ) from None
    if info.get("tool") != tool.name:
        raise ValueError(f"{build_dir}: built for {info.get('tool')}, not {tool.name}")
    site = os.path.join(os.path.abspath(build_dir), "site")
    extensions = tuple(sorted(glob.glob(os.path.join(site, "**", "*.so"), recursive=True)))
    copy = os.path.join(os.path.abspath(build_dir), "src")
    return Build(tool.name, str(info["source"]), copy, site, extensions)
