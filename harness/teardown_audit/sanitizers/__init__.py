"""Sanitizer runs: instrumented builds, runs under TSan/ASan/valgrind, reports parsed to verdicts.

`build.py` builds, `tools.py` knows each tool's flags and environment, `run.py` runs a command,
`reports.py` parses logs, `judge.py` turns reports into a Verdict, `cli.py` is the subcommand,
`scenario.py` the default workload. See specs/sanitizers.md.
"""

from __future__ import annotations

from teardown_audit.sanitizers.build import Build, BuildError, build_instrumented, existing_build
from teardown_audit.sanitizers.judge import judge
from teardown_audit.sanitizers.reports import Frame, Report, parse_log_dir, parse_log_file
from teardown_audit.sanitizers.run import SanitizedRun, run_under, verdict_of
from teardown_audit.sanitizers.tools import TOOLS, Tool, ToolUnavailable, get_tool

__all__ = [
    "TOOLS",
    "Build",
    "BuildError",
    "Frame",
    "Report",
    "SanitizedRun",
    "Tool",
    "ToolUnavailable",
    "build_instrumented",
    "existing_build",
    "get_tool",
    "judge",
    "parse_log_dir",
    "parse_log_file",
    "run_under",
    "verdict_of",
]
