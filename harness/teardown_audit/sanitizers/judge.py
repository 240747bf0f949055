"""Reports → one Verdict: how many, of which kind, where, with the offending source line quoted.

Attribution: a report is *ours* when one of its frames is in the audited extension (a source
file under one of `ours`, or a frame in one of its compiled objects). TSan and ASan/UBSan only
instrument the extension, so every report they make involves it and every one counts (CPython's
own false positives belong in the suppression file, not here). memcheck, helgrind and LSan see
the whole process, CPython included: only reports attributed to the extension fail; the others
are counted and shown, as a fact about the interpreter.
"""

from __future__ import annotations

import linecache
import os
from collections import Counter
from collections.abc import Sequence
from typing import Optional

from teardown_audit.sanitizers.reports import Frame, Report
from teardown_audit.verdict import Verdict, failed, passed

STRICT_TOOLS = frozenset({"tsan", "asan", "ubsan"})
# Allocator and runtime frames: never the line to quote.
_RUNTIME_FUNCS = ("malloc", "free", "calloc", "realloc", "operator new", "operator delete")
SHOWN_REPORTS = 20  # in the evidence; the CLI's failure details show its first lines
FRAMES_PER_SECTION = 4


def resolve(path: Optional[str], ours: Sequence[str]) -> Optional[str]:
    """An absolute path for a frame's file: relative ones are looked up under each root."""
    if not path or os.path.isabs(path):
        return path
    for root in ours:
        candidate = os.path.join(root, path)
        if os.path.isfile(candidate):
            return candidate
    return path


def _under(path: Optional[str], root: str) -> bool:
    root = os.path.abspath(root)
    return bool(path) and (path == root or str(path).startswith(root.rstrip("/") + "/"))


def is_ours(frame: Frame, ours: Sequence[str]) -> bool:
    file = resolve(frame.file, ours)
    return any(_under(file, root) or _under(frame.obj, root) for root in ours)


# Interned strings belong to the interpreter's interned table, whoever asked for them. 3.12 and
# 3.13 make them immortal and never free them, so memcheck calls each one "definitely lost" with
# the caller on the stack: every extension's PyInit adding its methods. An extension cannot
# leak one, so such a leak is never attributed to it.
INTERPRETER_OWNED_ALLOCATORS = frozenset(
    {
        "PyUnicode_InternFromString",
        "PyUnicode_InternInPlace",
        "PyUnicode_InternImmortal",
        "_PyUnicode_InternMortal",
        "_PyUnicode_InternImmortal",
        "intern_common",
    }
)


def is_leak(report: Report) -> bool:
    return report.tool == "lsan" or report.kind.startswith("Leak_")


def attributed(report: Report, ours: Sequence[str]) -> bool:
    if is_leak(report) and any(f.function in INTERPRETER_OWNED_ALLOCATORS for f in report.frames):
        return False
    return any(is_ours(f, ours) for f in report.frames)


def counts(report: Report, ours: Sequence[str]) -> bool:
    """Whether this report fails the run."""
    return report.tool in STRICT_TOOLS or attributed(report, ours)


def source_line(frame: Frame, ours: Sequence[str]) -> Optional[str]:
    file = resolve(frame.file, ours)
    if not file or not frame.line or not os.path.isabs(file):
        return None
    text = linecache.getline(file, frame.line).strip()
    return text or None


def _short(path: str, ours: Sequence[str]) -> str:
    """A path relative to the first root containing it (as a developer would type it)."""
    full = resolve(path, ours) or path
    for root in ours:
        if _under(full, root):
            return os.path.relpath(full, os.path.abspath(root))
    return path


def quote(frames: Sequence[Frame], ours: Sequence[str]) -> Optional[str]:
    """`impl/ploop.c:327 (tr_ploop_close): pl->closing = true;` for the first frame worth
    quoting: in our code if any, else the first frame with a readable source line."""
    candidates = [f for f in frames if f.function not in _RUNTIME_FUNCS and f.file and f.line]
    ordered = [f for f in candidates if is_ours(f, ours)] + candidates
    for frame in ordered:
        text = source_line(frame, ours)
        if text is not None:
            assert frame.file is not None
            return f"{_short(frame.file, ours)}:{frame.line} ({frame.function}): {text}"
    return None


def describe(report: Report, ours: Sequence[str]) -> list[str]:
    """Evidence lines for one report: headline, then each stack's title and first frames."""
    lines = [f"{report.tool}: {report.headline}" + (f"  [{report.log}]" if report.log else "")]
    for section in report.sections:
        if not section.frames:
            continue
        if section.title != report.headline:
            lines.append(f"  {section.title}")
        for frame in section.frames[:FRAMES_PER_SECTION]:
            lines.append(f"    {frame.where()}")
        q = quote(section.frames, ours)
        if q:
            lines.append(f"    > {q}")
    return lines


def _reason_for(report: Report, ours: Sequence[str]) -> str:
    # The two stacks that matter: the access and, for a race, the conflicting one.
    stacks = [s for s in report.sections if s.frames][:2]
    quotes = [q for q in (quote(s.frames, ours) for s in stacks) if q]
    if not quotes:
        return report.headline
    if report.tool == "tsan" and len(quotes) == 2:
        return f"{quotes[0]} vs {quotes[1]}"
    return quotes[0]


def judge(
    check: str,
    tool: str,
    reports: Sequence[Report],
    ours: Sequence[str],
    *,
    command_ok: bool,
    command_status: str,
    processes: Optional[int] = None,
    output_tail: str = "",
) -> Verdict:
    """One verdict for a run under `tool`."""
    failing = [r for r in reports if counts(r, ours)]
    others = [r for r in reports if not counts(r, ours)]
    kinds = Counter(f"{r.tool} {r.kind}" for r in failing)
    data = {
        "tool": tool,
        "reports": len(failing),
        "kinds": dict(kinds),
        "unattributed": len(others),
        "command": command_status,
        "processes": processes,
    }
    evidence: list[str] = []
    for report in failing[:SHOWN_REPORTS]:
        evidence += describe(report, ours)
    if len(failing) > SHOWN_REPORTS:
        evidence.append(f"... {len(failing) - SHOWN_REPORTS} more report(s) in the logs")
    if others:
        evidence.append(
            f"{len(others)} report(s) not attributed to the extension (interpreter-internal), "
            f"first: {others[0].headline}"
        )
    where = f" over {processes} process(es)" if processes is not None else ""
    if failing:
        summary = ", ".join(f"{k} x{n}" for k, n in kinds.most_common())
        reason = f"{len(failing)} {tool} report(s) ({summary}): {_reason_for(failing[0], ours)}"
        return failed(check, reason, evidence=evidence, data=data)
    if not command_ok:
        evidence += output_tail.strip().splitlines()[-20:]
        return failed(
            check,
            f"the command failed under {tool} ({command_status}) with no {tool} report",
            evidence=evidence,
            data=data,
        )
    note = f"; {len(others)} interpreter-internal report(s) not attributed" if others else ""
    return passed(
        check,
        f"0 {tool} reports attributed to the extension{where}; command {command_status}{note}",
        evidence=evidence,
        data=data,
    )
