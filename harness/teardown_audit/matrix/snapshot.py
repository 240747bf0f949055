"""One copy of the checkout per matrix run, taken at the start.

Other engineers (or an editor) may change the checkout while a 20-minute matrix runs; every
interpreter must build and test the same files, and the suite must run against the sources
its extension was built from. The snapshot is what `git ls-files` lists (tracked plus
untracked-but-not-ignored files), or, outside git, every file but build products.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence

from teardown_audit.proc import run_bounded

SKIP_DIRS = (".git", ".venv", "build", "dist", "reports", "__pycache__", ".ruff_cache")
SKIP_SUFFIXES = (".so", ".o", ".pyc")


def checkout_files(repo: str) -> list[str]:
    """Paths relative to repo of everything a build and the suite may read."""
    if not os.path.exists(os.path.join(repo, ".git")):
        # Not the top of a work tree: a copy (the matrix's own, inside an ignored .venv of
        # the enclosing checkout, where git would list nothing).
        return walk_files(repo)
    listed = run_bounded(
        ["git", "-C", repo, "ls-files", "-z", "-co", "--exclude-standard"],
        timeout=60.0,
        capture_stacks=False,
    )
    if listed.returncode == 0:
        names = [n for n in listed.stdout.split("\0") if n]
        # A tracked file deleted in the work tree is listed but gone: not part of the tree.
        return sorted(n for n in names if os.path.isfile(os.path.join(repo, n)))
    return walk_files(repo)


def walk_files(root: str) -> list[str]:
    out = []
    for d, dirs, files in os.walk(root):
        dirs[:] = sorted(x for x in dirs if x not in SKIP_DIRS and not x.endswith(".egg-info"))
        rel = os.path.relpath(d, root)
        for f in sorted(files):
            if not f.endswith(SKIP_SUFFIXES):
                out.append(os.path.normpath(os.path.join(rel, f)))
    return out


def copy_files(src: str, dest: str, files: Sequence[str]) -> None:
    for rel in files:
        target = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(os.path.join(src, rel), target)


def take(repo: str, parent: str) -> str:
    """Copy the checkout into a new directory under parent; the caller removes it."""
    os.makedirs(parent, exist_ok=True)
    dest = tempfile.mkdtemp(prefix="matrix-snapshot-", dir=parent)
    copy_files(repo, dest, checkout_files(repo))
    return dest
