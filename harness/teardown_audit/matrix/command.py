"""`teardown-audit matrix run|list|merge`: `add_parser(subparsers)` and `main(args)`.

Bad input raises ValueError with one line (the CLI turns it into exit 2); argparse errors go
through the caller's parser class (one line, exit 2 in `teardown-audit`). Exit status of a
run or a merge: 0 every interpreter green, 1 anything failed or nothing was tested.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
from typing import Any

from teardown_audit.matrix import snapshot
from teardown_audit.matrix.discover import SYSTEM_DIRS, default_pyenv_root, discover, probe
from teardown_audit.matrix.interpreters import Interpreter
from teardown_audit.matrix.results import MatrixResult, load, merge
from teardown_audit.matrix.runner import STEPS, RunOptions, run_matrix
from teardown_audit.matrix.selection import Selection, parse_shard, select, shard
from teardown_audit.matrix.table import render_details, render_notes, render_table

EXIT_OK, EXIT_FAIL = 0, 1


def shard_arg(text: str) -> tuple[int, int]:
    try:
        return parse_shard(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def jobs_arg(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1: {text!r}")
    return int(text)


def steps_arg(text: str) -> tuple[str, ...]:
    steps = tuple(s for s in text.split(",") if s)
    unknown = [s for s in steps if s not in STEPS]
    if not steps or unknown:
        raise argparse.ArgumentTypeError(f"steps are a comma list of {', '.join(STEPS)}")
    return steps


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add `matrix` to the `teardown-audit` subcommands (an argparse subparsers action)."""
    matrix = subparsers.add_parser("matrix", help="every CPython on the machine, built and audited")
    sub = matrix.add_subparsers(dest="matrix_command", required=True)
    run = sub.add_parser("run", help="build, test and audit on each interpreter; one table")
    _add_selection(run)
    run.add_argument(
        "--steps",
        type=steps_arg,
        default=STEPS,
        help="comma list of tests, audit, killmatrix (default all)",
    )
    run.add_argument("--jobs", type=jobs_arg, default=1, help="interpreters side by side")
    run.add_argument("--pytest-args", default="", help="extra pytest arguments (one string)")
    run.add_argument("--audit-args", default="", help="extra `audit` arguments (one string)")
    run.add_argument("--json", metavar="FILE", help="merged JSON (default REPORTS/matrix.json)")
    run.add_argument("--reports", default="reports/matrix", help="per-interpreter reports")
    run.add_argument("--venv-root", default=".venv", help="where .venv/matrix-* venvs live")
    run.add_argument("--repo", default=".", help="the checkout to build and test")
    lst = sub.add_parser("list", help="discovered interpreters, and which a run would cover")
    _add_selection(lst)
    mrg = sub.add_parser("merge", help="merge shard results into one table and JSON")
    mrg.add_argument("files", nargs="+", metavar="SHARD_JSON")
    mrg.add_argument("--json", metavar="FILE", help="write the merged JSON")
    return matrix


def _add_selection(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--python",
        action="append",
        default=[],
        metavar="NAME",
        help="3.11, 3.11.7, 3.11d, 3.11-debug, 3.13t or a path (repeatable)",
    )
    p.add_argument(
        "--skip-python",
        action="append",
        default=[],
        metavar="PYTHON",
        help="leave out this interpreter (e.g. the one `make test` runs itself)",
    )
    p.add_argument(
        "--all-builds", action="store_true", help="every build, not one per (X.Y, ABI flags)"
    )
    p.add_argument("--shard", type=shard_arg, metavar="i/n", help="run only this part")
    p.add_argument("--pyenv-root", default=default_pyenv_root(), help="default: PYENV_ROOT")
    p.add_argument(
        "--bin-dir",
        action="append",
        metavar="DIR",
        help=f"where to look for python3.X[d|t] (default {' '.join(SYSTEM_DIRS)})",
    )


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _selection(args: argparse.Namespace) -> tuple[Selection, list[str]]:
    paths = [p for p in args.python if os.sep in p]
    for p in paths:
        if not os.access(p, os.X_OK):
            raise ValueError(f"--python {p}: not an executable file")
    found = discover(args.pyenv_root, args.bin_dir or SYSTEM_DIRS, extra=paths)
    exclude = [probe(p, "given").executable for p in args.skip_python]
    sel = select(found.interpreters, args.python, exclude, args.all_builds)
    notes = found.notes + sel.notes
    if args.shard is not None:
        index, count = args.shard
        part = shard(sel.interpreters, index, count)
        left = [i.label for i in sel.interpreters if i not in part]
        if left:
            notes.append(f"shard {index}/{count}: the other shards run {', '.join(left)}")
        sel.interpreters = part
    return sel, notes


def cmd_list(args: argparse.Namespace) -> int:
    sel, notes = _selection(args)
    for i in sel.interpreters:
        kind = ", ".join(
            k for k, on in (("debug", i.debug), ("free-threaded", i.free_threaded)) if on
        )
        print(f"{i.label:<16} {i.source:<7} {i.path}" + (f"  ({kind})" if kind else ""))
    if notes:
        print(render_notes(notes))
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    repo = os.path.abspath(args.repo)
    if not (
        os.path.isfile(os.path.join(repo, "setup.py")) and os.path.isdir(os.path.join(repo, "impl"))
    ):
        raise ValueError(f"not a teardown-audit checkout: {repo} (use --repo)")
    sel, notes = _selection(args)
    venv_root = os.path.abspath(args.venv_root)
    tree = snapshot.take(repo, venv_root)
    try:
        return _run(args, sel.interpreters, notes, tree, venv_root)
    finally:
        shutil.rmtree(tree, ignore_errors=True)


def _run(
    args: argparse.Namespace,
    interps: list[Interpreter],
    notes: list[str],
    tree: str,
    venv_root: str,
) -> int:
    opts = RunOptions(
        repo=tree,
        venv_root=venv_root,
        reports=os.path.abspath(args.reports),
        steps=args.steps,
        jobs=args.jobs,
        pytest_args=shlex.split(args.pytest_args),
        audit_args=shlex.split(args.audit_args),
    )
    labels = ", ".join(i.label for i in interps) or "none"
    _say(f"teardown-audit matrix: {labels}; steps venv, build, {', '.join(args.steps)}")
    result = run_matrix(interps, opts, _say, shard=args.shard, notes=notes)
    json_path = args.json or os.path.join(opts.reports, _default_json(args.shard))
    result.write_json(json_path)
    _print(result)
    print(f"reports: {opts.reports}/*/junit.xml, {json_path}")
    return EXIT_OK if result.ok else EXIT_FAIL


def _default_json(part: tuple[int, int] | None) -> str:
    return "matrix.json" if part is None else f"matrix-shard-{part[0]}-of-{part[1]}.json"


def cmd_merge(args: argparse.Namespace) -> int:
    merged = merge([(path, load(path)) for path in args.files])
    if args.json:
        merged.write_json(args.json)
    _print(merged)
    return EXIT_OK if merged.ok else EXIT_FAIL


def _print(result: MatrixResult) -> None:
    details = render_details(result)
    if details:
        print(details + "\n")
    print(render_table(result))
    if result.notes:
        print(render_notes(result.notes))


COMMANDS = {"run": cmd_run, "list": cmd_list, "merge": cmd_merge}


def main(args: argparse.Namespace) -> int:
    return COMMANDS[args.matrix_command](args)
