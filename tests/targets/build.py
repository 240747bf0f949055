"""Compile a one-file C extension against the running interpreter (tests only).

No setuptools: a plain gcc call (-Werror, like the project's own builds) with the interpreter's
sysconfig include dir, so the target builds the same way on every pyenv version in ~0.3 s.
"""

from __future__ import annotations

import os
import sys
import sysconfig

from teardown_audit.proc import run_bounded

# Generous: gcc on a tiny file takes ~0.3 s; a loaded CI box may be 10x slower.
COMPILE_TIMEOUT = 120.0
CFLAGS = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-O0", "-g"]


def build_extension(source: str, out_dir: str) -> str:
    """Build `source` (name.c, module `name`) into out_dir; return the directory to import from."""
    name = os.path.splitext(os.path.basename(source))[0]
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    target = os.path.join(out_dir, name + suffix)
    includes = {sysconfig.get_paths()["include"], sysconfig.get_paths()["platinclude"]}
    argv = ["gcc", *CFLAGS, *(f"-I{d}" for d in sorted(includes)), source, "-o", target, "-pthread"]
    # run_bounded: gcc's cc1/as/ld children die with it on timeout, like every child here.
    proc = run_bounded(argv, timeout=COMPILE_TIMEOUT, capture_stacks=False)
    if proc.returncode != 0:
        why = "timed out" if proc.timed_out else f"exit {proc.returncode}"
        raise RuntimeError(f"gcc {why} for Python {sys.version_info[:2]}:\n{proc.stderr}")
    return out_dir
