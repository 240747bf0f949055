"""The issue's targets, judged on one run's figures (ratios within the run; see specs/bench.md)."""

from __future__ import annotations

from typing import Any

PEER = "peer (pool job)"  # the peer with the reference's architecture (a pool job per call)
REFS = ("ref ScriptedTool", "ref Bash")


def judge(results: dict[str, Any]) -> list[dict[str, Any]]:
    """[{target, figure, value, bound, met}] for every target whose figures were measured."""
    rows: list[dict[str, Any]] = []

    def add(target: str, figure: str, value: float, bound: float, at_least: bool) -> None:
        met = value >= bound if at_least else value <= bound
        rows.append({"target": target, "figure": figure, "value": value, "bound": bound,
                     "at_least": at_least, "met": met})  # fmt: skip

    dispatch = results.get("dispatch")
    if dispatch and PEER in dispatch:
        peer = dispatch[PEER]["calls_per_s"]["median"]
        for ref in REFS:
            value = dispatch[ref]["calls_per_s"]["median"] / peer
            add("dispatch >= 2x the peer", f"{ref} / {PEER}", value, 2.0, True)
    for kind, key, bound in (("idle_drop", None, 1e-4), ("abandoned_drop", "drop", 5e-4)):
        figures = results.get(kind)
        if figures:
            for ref in REFS:
                fig = figures[ref] if key is None else figures[ref][key]
                add(f"{kind.replace('_', ' ')} p50 <= {bound * 1e3:g} ms", ref, fig["p50"],
                    bound, False)  # fmt: skip
    exits = results.get("exit_stress")
    if exits:
        floor = exits["payloads"]["floor command"]
        scripts = exits["payloads"]["teardown_ref exit scripts"]
        add("exit stress >= 90% of the floor", "run_many / floor (floor command)",
            _median(floor["run_many"]) / _median(floor["floor"]), 0.9, True)  # fmt: skip
        for name, modes in (("floor command", floor), ("exit scripts", scripts)):
            add("exit stress >= 1.8x the serial loop", f"run_many / serial ({name})",
                _median(modes["run_many"]) / _median(modes["serial"]), 1.8, True)  # fmt: skip
    verdicts = results.get("verdicts")
    if verdicts:
        for row in verdicts["faults"]:
            if row["deadlock"] and row["check_s"] is not None:
                add("deadlock verdict <= hang bound + 3 s", row["fault"], row["check_s"],
                    verdicts["target_s"], False)  # fmt: skip
    for row in results.get("audit_wall", []):
        add("make audit <= 60 s", f"CPython {row['python']}", row["wall_s"], 60.0, False)
    return rows


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
