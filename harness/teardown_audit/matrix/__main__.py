"""`python -m teardown_audit.matrix ...`: the matrix without the rest of the CLI, so that
`make matrix` can drive it with any interpreter straight from the checkout (PYTHONPATH)."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from typing import NoReturn, Optional

from teardown_audit.exit_runs import kill_children
from teardown_audit.matrix.command import add_parser, main

PROG = "teardown-audit"


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not the usage block
        raise ValueError(message)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(argv: Optional[Sequence[str]] = None) -> int:
    signal.signal(signal.SIGTERM, _interrupt)  # a cancelled CI job cleans up like Ctrl-C
    parser = _OneLineParser(prog=PROG)
    add_parser(parser.add_subparsers(dest="command", required=True, parser_class=_OneLineParser))
    try:
        return main(parser.parse_args(["matrix", *(sys.argv[1:] if argv is None else argv)]))
    except ValueError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        kill_children()
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(run())
