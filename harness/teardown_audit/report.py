"""Render verdicts: a summary table for the terminal, JSON, and JUnit XML for CI."""

from __future__ import annotations

import json
import platform
import sys
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

from teardown_audit.verdict import ERROR, FAIL, SKIP, Verdict

REASON_WIDTH = 110
EVIDENCE_LINES = 14


def summary_table(verdicts: Sequence[Verdict], target: str, elapsed: float) -> str:
    name_w = max([len("check"), *(len(v.check) for v in verdicts)])
    lines = [
        f"teardown-audit: target {target}",
        f"{'check':<{name_w}}  {'status':<6}  {'time':>6}  reason",
        f"{'-' * name_w}  ------  ------  {'-' * 40}",
    ]
    for v in verdicts:
        reason = v.reason if len(v.reason) <= REASON_WIDTH else v.reason[: REASON_WIDTH - 1] + "…"
        lines.append(f"{v.check:<{name_w}}  {v.status.upper():<6}  {v.elapsed:5.1f}s  {reason}")
    counts = {s: sum(v.status == s for v in verdicts) for s in ("pass", FAIL, ERROR, SKIP)}
    tally = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    lines.append(f"{tally} in {elapsed:.1f} s")
    return "\n".join(lines)


def failure_details(verdicts: Sequence[Verdict]) -> str:
    """For every failed or errored check: the full reason, evidence and how to reproduce it."""
    blocks = []
    for v in verdicts:
        if v.status not in (FAIL, ERROR):
            continue
        block = [f"{v.status.upper()} {v.check}: {v.reason}"]
        block += ["    " + line for line in v.evidence[:EVIDENCE_LINES]]
        if len(v.evidence) > EVIDENCE_LINES:
            block.append(f"    … {len(v.evidence) - EVIDENCE_LINES} more lines in --json")
        if v.repro:
            block.append(f"  reproduce: {v.repro}")
        blocks.append("\n".join(block))
    return "\n\n".join(blocks)


def to_json(verdicts: Sequence[Verdict], target: str, elapsed: float) -> dict[str, Any]:
    return {
        "target": target,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "elapsed": elapsed,
        "ok": all(v.ok for v in verdicts),
        "verdicts": [v.to_dict() for v in verdicts],
    }


def write_json(path: str, verdicts: Sequence[Verdict], target: str, elapsed: float) -> None:
    with open(path, "w") as f:
        json.dump(to_json(verdicts, target, elapsed), f, indent=2)
        f.write("\n")


def to_junit(verdicts: Sequence[Verdict], target: str, elapsed: float) -> str:
    suite = ET.Element(
        "testsuite",
        name=f"teardown-audit[{target}]",
        tests=str(len(verdicts)),
        failures=str(sum(v.status == FAIL for v in verdicts)),
        errors=str(sum(v.status == ERROR for v in verdicts)),
        skipped=str(sum(v.status == SKIP for v in verdicts)),
        time=f"{elapsed:.3f}",
    )
    for v in verdicts:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"teardown_audit.{target}",
            name=v.check,
            time=f"{v.elapsed:.3f}",
        )
        body = "\n".join([*v.evidence, *([f"reproduce: {v.repro}"] if v.repro else [])])
        if v.status in (FAIL, ERROR):
            tag = "failure" if v.status == FAIL else "error"
            ET.SubElement(case, tag, message=v.reason).text = body
        elif v.status == SKIP:
            ET.SubElement(case, "skipped", message=v.reason)
        else:
            ET.SubElement(case, "system-out").text = v.reason + ("\n" + body if body else "")
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode") + "\n"


def write_junit(path: str, verdicts: Sequence[Verdict], target: str, elapsed: float) -> None:
    with open(path, "w") as f:
        f.write('<?xml version="1.0" encoding="utf-8"?>\n')
        f.write(to_junit(verdicts, target, elapsed))
