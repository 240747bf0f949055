"""Find every CPython on the machine: pyenv versions, `python3.X`, `python3.Xd`, `python3.Xt`.

Nothing is assumed from a file name: each candidate is run once (bounded) and reports its own
version, ABI flags and build options. Two paths to one binary are one interpreter; a virtual
environment is not an interpreter of its own.
"""

from __future__ import annotations

import glob
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Optional

from teardown_audit.matrix.interpreters import Interpreter
from teardown_audit.proc import run_bounded

# Debian installs python3.X, python3.Xd (debug, python3.X-dbg) and, where packaged,
# python3.Xt (free-threaded); deadsnakes and python.org builds use the same names.
SYSTEM_NAME = re.compile(r"^python3\.\d+t?d?$")
SYSTEM_DIRS = ("/usr/bin", "/usr/local/bin")
PROBE_TIMEOUT = 30.0
# Runs on any Python that may be lying around (2.7 included), so that an old one is reported
# as unsupported rather than as broken: no f-strings, no -I (Python 2 has neither).
PROBE = """
import json, os, platform, sys, sysconfig
cv = sysconfig.get_config_var
print(json.dumps({
    "version": platform.python_version(),
    "abiflags": getattr(sys, "abiflags", "") or "",
    "debug": bool(cv("Py_DEBUG")),
    "free_threaded": bool(cv("Py_GIL_DISABLED")),
    "implementation": platform.python_implementation().lower(),
    "executable": os.path.realpath(sys.executable),
    "venv": sys.prefix != getattr(sys, "base_prefix", sys.prefix),
}))
"""


@dataclass
class Discovery:
    interpreters: list[Interpreter] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # candidates left out, and why


def default_pyenv_root() -> Optional[str]:
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    return root if os.path.isdir(root) else None


def pyenv_candidates(root: str) -> list[str]:
    """One interpreter per `versions/*` entry: its python3 (python for a Python 2 build)."""
    out = []
    for version_dir in sorted(glob.glob(os.path.join(root, "versions", "*"))):
        for name in ("python3", "python"):
            path = os.path.join(version_dir, "bin", name)
            if os.access(path, os.X_OK):
                out.append(path)
                break
    return out


def system_candidates(dirs: Iterable[str]) -> list[str]:
    out = []
    for d in dirs:
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue  # a missing directory is not an error: the machine just has none there
        for name in names:
            path = os.path.join(d, name)
            if SYSTEM_NAME.match(name) and os.access(path, os.X_OK) and os.path.isfile(path):
                out.append(path)
    return out


def probe(path: str, source: str) -> Interpreter:
    """Ask the interpreter at path what it is; ValueError with one line if it cannot say."""
    result = run_bounded(
        [path, "-E", "-s", "-S", "-c", PROBE], timeout=PROBE_TIMEOUT, capture_stacks=False
    )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise ValueError(f"{path}: does not run as a Python interpreter ({result.verdict}: {last})")
    try:
        raw = json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        answer = result.stdout[:80]
        raise ValueError(f"{path}: unexpected answer to the probe: {answer!r}") from None
    if raw.get("venv"):
        raise ValueError(f"{path}: a virtual environment, not an interpreter of its own")
    raw.update(path=path, source=source)
    return Interpreter.from_dict(raw)


def discover(
    pyenv_root: Optional[str],
    system_dirs: Sequence[str] = SYSTEM_DIRS,
    extra: Sequence[str] = (),
) -> Discovery:
    """Every distinct interpreter, sorted by version then build; notes say what was left out."""
    candidates = [(p, "given") for p in extra]
    if pyenv_root:
        candidates += [(p, "pyenv") for p in pyenv_candidates(pyenv_root)]
    candidates += [(p, "system") for p in system_candidates(system_dirs)]
    found = Discovery()
    seen: dict[str, Interpreter] = {}
    for path, source in candidates:
        try:
            interp = probe(path, source)
        except ValueError as exc:
            found.notes.append(str(exc))
            continue
        first = seen.get(interp.executable)
        if first is not None:
            continue  # the same binary reached by another name (python3 -> python3.11)
        seen[interp.executable] = interp
        found.interpreters.append(interp)
    found.interpreters.sort(key=sort_key)
    return found


def sort_key(interp: Interpreter) -> tuple[tuple[int, int], str, tuple[tuple[int, ...], bool], str]:
    return (interp.minor, interp.abiflags, interp.version_key, interp.path)
