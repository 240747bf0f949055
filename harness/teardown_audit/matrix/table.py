"""The interpreter x check table, and the details of every failed cell under it."""

from __future__ import annotations

from teardown_audit.matrix.results import MatrixResult, shard_text
from teardown_audit.verdict import ERROR, FAIL, Verdict

NOT_RUN = "-"
EVIDENCE_LINES = 6


def _cell(v: Verdict | None) -> str:
    return NOT_RUN if v is None else f"{v.status.upper()} {v.elapsed:.1f}s"


def render_table(matrix: MatrixResult) -> str:
    """Rows are checks, columns interpreters: a column per interpreter keeps the table narrow
    however many checks the audit grows, and reads down as one interpreter's run."""
    checks: list[str] = []
    for r in matrix.results:
        for v in r.verdicts:
            if v.check not in checks:
                checks.append(v.check)
    heads = [r.interp.label for r in matrix.results]
    rows: list[list[str]] = []
    for check in checks:
        row = [check]
        for r in matrix.results:
            found = [v for v in r.verdicts if v.check == check]
            row.append(_cell(found[0] if found else None))
        rows.append(row)
    total = ["total"] + [f"{'PASS' if r.ok else 'FAIL'} {r.elapsed:.0f}s" for r in matrix.results]
    widths = [max(len(x) for x in col) for col in zip(["check", *heads], *rows, total)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    shard = "" if matrix.shard is None else f" (shard {shard_text(matrix.shard)})"
    out = [f"teardown-audit matrix{shard}: {len(matrix.results)} interpreter(s)"]
    out += [line(["check", *heads]), line(["-" * w for w in widths])]
    out += [line(r) for r in rows]
    out += [line(["-" * w for w in widths]), line(total)]
    failed = sum(not r.ok for r in matrix.results)
    verdict = "all green" if matrix.ok else f"{failed} interpreter(s) failing"
    if matrix.problems:
        verdict += "; " + "; ".join(matrix.problems)
    if not matrix.results and matrix.shard is None:
        verdict = "no interpreter selected: nothing was tested"
    out.append(f"{verdict}; {matrix.elapsed:.0f} s wall")
    return "\n".join(out)


def render_details(matrix: MatrixResult) -> str:
    """For each failed cell: interpreter, check, reason, the log, and how to reproduce it."""
    blocks = []
    for r in matrix.results:
        for v in r.verdicts:
            if v.status not in (FAIL, ERROR):
                continue
            block = [f"{v.status.upper()} {r.interp.label} ({r.interp.path}) {v.check}: {v.reason}"]
            block += ["    " + ln for ln in v.evidence[:EVIDENCE_LINES]]
            if v.repro:
                block.append(f"  reproduce: {v.repro}")
            blocks.append("\n".join(block))
    return "\n\n".join(blocks)


def render_notes(notes: list[str]) -> str:
    return "\n".join(f"note: {n}" for n in notes)
