"""What the numbers were taken on: CPU, cores, load, interpreter, versions, the commit."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from typing import Any


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(dist: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def info() -> dict[str, Any]:
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "os": platform.platform(terse=True),
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "bashkit": _version("bashkit"),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "dirty": _git("status", "--porcelain", "--untracked-files=no") not in ("", "unknown"),
        "load_before": load(),
    }
