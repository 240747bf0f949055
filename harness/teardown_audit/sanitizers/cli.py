"""`teardown-audit sanitize`: build the extension with a sanitizer and run a workload under it.

    teardown-audit sanitize --tool tsan|asan|valgrind|helgrind [--target T] [--python P]
                            [--source DIR | --reuse-build] [--build-dir DIR] [--log-dir DIR]
                            [--suppressions FILE] [--ours PATH]... [--timeout S] [--name CHECK]
                            [-- COMMAND ...]

Without a COMMAND, the workload is `P -m teardown_audit.sanitizers.scenario --target T` (plus a
LeakSanitizer check under asan). Exit 0: no report attributed to the extension and the command
succeeded; 1: reports (or the command failed); 2: bad input, one line on stderr.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from typing import Any

from teardown_audit.report import failure_details, summary_table
from teardown_audit.sanitizers.build import (
    Build,
    BuildError,
    build_instrumented,
    existing_build,
    interpreter_tag,
)
from teardown_audit.sanitizers.run import HARNESS_ROOT, run_under, verdict_of
from teardown_audit.sanitizers.tools import TOOLS, ToolUnavailable, get_tool

PROG = "teardown-audit sanitize"
DEFAULT_TIMEOUT = 900.0  # the whole command; each target stays under 15 min on 2 cores


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `sanitize` on the CLI's subparsers (argparse's _SubParsersAction)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "sanitize", help="run the extension under TSan, ASan/UBSan, memcheck or helgrind"
    )
    configure(parser)
    return parser


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tool", required=True, choices=list(TOOLS))
    parser.add_argument("--target", default="teardown_ref", help="adapter (as for audit)")
    parser.add_argument("--python", default=sys.executable, help="interpreter to build/run for")
    parser.add_argument(
        "--source",
        help="project to build instrumented (setup.py/pyproject.toml); default: this checkout "
        "for teardown_ref; with valgrind, omit it to use the installed extension",
    )
    parser.add_argument(
        "--reuse-build", action="store_true", help="use the build already in --build-dir"
    )
    parser.add_argument("--build-dir", help="default build/sanitizers/<tool>-<python tag>")
    parser.add_argument("--log-dir", help="default <build-dir>/logs/<name>")
    parser.add_argument("--suppressions", help="the tool's suppression file")
    parser.add_argument(
        "--ours",
        action="append",
        default=[],
        help="source/object path attributed to the extension (repeatable; default --source)",
    )
    parser.add_argument(
        "--no-leak-check",
        action="store_true",
        help="memory errors only: no memcheck leak check / LSan check (an interpreter that "
        "does not free its own memory at exit, e.g. 3.13's interned strings)",
    )
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="bound (s)")
    parser.add_argument("--name", help="check name in the report (default sanitize-<tool>)")
    parser.add_argument(
        "--expect-reports",
        action="store_true",
        help="a known-bad target: succeed only if the tool reports it (proves the tool is live)",
    )
    parser.add_argument(
        "--expect-quote",
        metavar="TEXT",
        help="with --expect-reports: a report must quote a source line containing TEXT",
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND ... (optional)")


def _checkout_source(target: str) -> str | None:
    """This checkout, when the harness runs from one and the target is the reference."""
    root = os.path.dirname(HARNESS_ROOT)
    if target == "teardown_ref" and os.path.isdir(os.path.join(root, "impl")):
        return root
    return None


def _build(args: argparse.Namespace, python: str, build_dir: str) -> Build | None:
    tool = get_tool(args.tool)
    if args.reuse_build:
        return existing_build(build_dir, tool)
    source = args.source or _checkout_source(args.target)
    if source is None:
        if tool.instruments:
            raise ValueError(f"--tool {tool.name} needs --source (the project to instrument)")
        return None  # valgrind on the installed extension
    return build_instrumented(
        source, python, tool, build_dir, extra_env={"TEARDOWN_REF_WERROR": "1"}
    )


def run(args: argparse.Namespace) -> int:
    """The subcommand body; raises ValueError/ToolUnavailable/BuildError on bad input."""
    started = time.monotonic()
    tool = get_tool(args.tool)
    python = os.path.abspath(shutil.which(args.python) or args.python)  # no realpath: a venv
    if not (os.path.isfile(python) and os.access(python, os.X_OK)):
        raise ValueError(f"--python {args.python}: not an executable")
    if not (args.timeout > 0):
        raise ValueError(f"--timeout must be positive: {args.timeout}")
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    name = args.name or f"sanitize-{tool.name}"
    build_dir = args.build_dir or os.path.join(
        "build", "sanitizers", f"{tool.name}-{interpreter_tag(python)}"
    )
    build = _build(args, python, build_dir)
    if not command:
        command = [python, "-m", "teardown_audit.sanitizers.scenario", "--target", args.target]
        if tool.name == "asan" and not args.no_leak_check:
            command.append("--leak-check")
    ours = [os.path.abspath(p) for p in args.ours]
    if build is not None:
        ours += [build.copy, build.site]
    if not ours:
        raise ValueError("nothing to attribute reports to: give --source or --ours")
    log_dir = args.log_dir or os.path.join(build_dir, "logs", name)
    print(f"{PROG}: {name}: {' '.join(command)} under {tool.name}", file=sys.stderr, flush=True)
    sanitized = run_under(
        tool,
        command,
        log_dir=log_dir,
        timeout=args.timeout,
        build=build,
        suppressions=args.suppressions,
        leaks=not args.no_leak_check,
    )
    verdict = verdict_of(name, sanitized, ours, started)
    details = failure_details([verdict])
    if details:
        print(details + "\n")
    print(summary_table([verdict], f"{args.target} ({tool.name})", verdict.elapsed))
    if args.expect_reports:
        caught = verdict.data.get("reports", 0) > 0
        if args.expect_quote:
            quoted = [line for line in verdict.evidence if line.strip().startswith(">")]
            caught = any(args.expect_quote in line for line in quoted)
        print(f"{PROG}: {name}: expected reports: {'seen' if caught else 'NONE (tool blind?)'}")
        return 0 if caught else 1
    return 0 if verdict.ok else 1


def main(args: argparse.Namespace) -> int:
    """Entry point for cli.py's dispatcher: 0/1, or 2 with one line on bad input."""
    try:
        return run(args)
    except (ValueError, ToolUnavailable, BuildError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"teardown-audit: error: {first}", file=sys.stderr)
        if isinstance(exc, BuildError):
            print(str(exc), file=sys.stderr)  # the compiler's output: the reason, for humans
        return 2
