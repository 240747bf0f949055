"""What every file in scenarios/ uses: its target from the command line, and its verdict.

A scenario is a standalone script: `python scenarios/<id>.py [--target T]`. It exits 0 when the
target behaves correctly and 1 with one `BROKEN: ...` line when it does not; a hang is for the
runner (`teardown-audit scenarios`) to bound and diagnose. Its docstring is its header: the
fields `id`, `origin`, `correct` and `broken`, one per line (`field: text`).
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from teardown_audit.adapters import Adapter, TargetError, load_adapter

HEADER_FIELDS = ("id", "origin", "correct", "broken")


def target() -> Adapter:
    """The adapter named by --target (default teardown_ref), loaded; exit 2 when unusable."""
    parser = argparse.ArgumentParser(description=sys.modules["__main__"].__doc__)
    parser.add_argument("--target", default="teardown_ref")
    args = parser.parse_args()
    try:
        adapter = load_adapter(args.target)
    except TargetError as exc:
        print(f"scenario: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return adapter


def broken(message: str) -> NoReturn:
    print(f"BROKEN: {message}", flush=True)
    raise SystemExit(1)


def correct(message: str) -> None:
    print(f"OK: {message}", flush=True)


def parse_header(doc: str) -> dict[str, str]:
    """The header fields of a scenario's docstring; ValueError names a missing one."""
    fields: dict[str, str] = {}
    last = ""
    for line in doc.splitlines():
        name, sep, text = line.partition(":")
        if sep and name.strip() in HEADER_FIELDS and not line[:1].isspace():
            last = name.strip()
            fields[last] = text.strip()
        elif last and line[:1].isspace() and line.strip():  # an indented continuation
            fields[last] += " " + line.strip()
        else:
            last = ""
    missing = [f for f in HEADER_FIELDS if f not in fields]
    if missing:
        raise ValueError(f"scenario header lacks {', '.join(missing)}")
    return fields
