"""`python -m teardown_audit.sanitizers ...`: the `sanitize` subcommand, standalone."""

from __future__ import annotations

import argparse
import sys

from teardown_audit.sanitizers.cli import configure, main


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"teardown-audit: error: {message}", file=sys.stderr)
        sys.exit(2)


def _entry() -> int:
    parser = _Parser(prog="teardown-audit sanitize")
    configure(parser)
    return main(parser.parse_args())


if __name__ == "__main__":
    sys.exit(_entry())
