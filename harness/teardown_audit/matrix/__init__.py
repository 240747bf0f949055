"""The version matrix: every CPython on the machine, each built, tested and audited on its own.

One concept a module (specs/matrix.md):
- `interpreters.py`: what one interpreter is (version, ABI flags, debug, free-threaded, tag)
- `discover.py`: finding them (pyenv versions, `python3.X`, `python3.Xd`, `python3.Xt`)
- `selection.py`: `--python` subsets, one build per (X.Y, ABI flags), `--shard i/n`
- `snapshot.py`: one copy of the checkout per run (every interpreter builds the same files)
- `steps.py`: the per-interpreter steps (venv, build, tests, audit) as verdicts
- `killmatrix_step.py`: `teardown-audit killmatrix` per interpreter, one row per fault
- `actionlint.py`: actionlint from PyPI in `.venv/matrix-actionlint` (the workflow's lint)
- `results.py`: per-interpreter results, the merged JSON, JUnit, merging shards
- `table.py`: the interpreter x check table
- `runner.py`: runs the steps for every selected interpreter
- `command.py`: `teardown-audit matrix run|list|merge` (`add_parser`, `main`)
"""

from __future__ import annotations

from teardown_audit.matrix.command import add_parser, main

__all__ = ["add_parser", "main"]
