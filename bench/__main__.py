"""`python -m bench`: run every benchmark, print the table, write the JSON (`make bench`)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Callable, Optional

from bench import (
    auditwall,
    dispatch,
    drops,
    exits,
    implementations,
    machine,
    probecost,
    targets,
    verdicts,
)
from bench.table import render, write_json

SECTIONS = ("dispatch", "drops", "exits", "verdicts", "probes", "audit")


def _sizes(quick: bool) -> dict[str, int]:
    """Sample sizes: full for the table, quick for a smoke run (a few seconds per section)."""
    if quick:
        return {"calls": 300, "rounds": 2, "idle": 30, "abandoned": 15, "exits": 10, "xr": 1}
    return {"calls": 2000, "rounds": 5, "idle": 300, "abandoned": 100, "exits": 30, "xr": 3}


def run(
    *,
    quick: bool,
    sections: tuple[str, ...],
    audit_pythons: list[str],
    progress: Callable[[str], None],
) -> dict[str, Any]:
    n = _sizes(quick)
    results: dict[str, Any] = {}
    notes: list[str] = []
    info = machine.info()
    impls, missing = implementations.available()
    notes += missing
    if "dispatch" in sections:
        progress("dispatch")
        results["dispatch"] = dispatch.measure(impls, calls=n["calls"], rounds=n["rounds"])
    if "drops" in sections:
        progress("drops: idle")
        results["idle_drop"] = drops.idle(impls, samples=n["idle"])
        progress("drops: abandoned")
        results["abandoned_drop"] = drops.abandoned(impls, samples=n["abandoned"])
    if "exits" in sections:
        progress("exit stress")
        workers = os.cpu_count() or 2
        results["exit_stress"] = exits.measure(runs=n["exits"], rounds=n["xr"], workers=workers)
    if "verdicts" in sections:
        progress("kill matrix: time to verdict" + (" (quick subset)" if quick else ""))
        results["verdicts"] = verdicts.measure(quick=quick)
    if "probes" in sections:
        progress("probe cost")
        results["probes"] = probecost.measure()
    if "audit" in sections and audit_pythons:
        progress("audit wall time: " + ", ".join(audit_pythons))
        results["audit_wall"] = auditwall.measure(audit_pythons)
    info["load_after"] = machine.load()
    return {
        "machine": info,
        "quick": quick,
        "results": results,
        "targets": targets.judge(results),
        "notes": notes,
    }


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small samples, fast faults only")
    parser.add_argument("--json", metavar="FILE", help="write the report as JSON")
    parser.add_argument("--only", action="append", choices=SECTIONS, help="a section (repeat)")
    parser.add_argument(
        "--audit-python", action="append", default=[], metavar="PY",
        help="a venv's python whose teardown-audit is timed (repeat per interpreter)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    sections = tuple(args.only or SECTIONS)
    report = run(
        quick=args.quick,
        sections=sections,
        audit_pythons=args.audit_python,
        progress=lambda what: print(f"[bench] {what}", file=sys.stderr, flush=True),
    )
    print(render(report))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        write_json(args.json, report)
        print(f"[bench] wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
