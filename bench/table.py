"""The benchmark table (markdown: the terminal shows it as is, README embeds it) and the JSON."""

from __future__ import annotations

import json
from typing import Any

from bench.targets import PEER
from bench.timing import ratio


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f} µs" if seconds < 0.01 else f"{seconds * 1e3:,.1f} ms"


def _spread(r: dict[str, float], unit: str = "") -> str:
    return f"{r['median']:,.0f}{unit} ({r['min']:,.0f}-{r['max']:,.0f})"


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def render(report: dict[str, Any]) -> str:
    m = report["machine"]
    res = report["results"]
    out = [
        f"**teardown-audit benchmarks** — {m['cpu']}, {m['cores']} cores, Linux {m['kernel']}, "
        f"CPython {m['python']}, bashkit {m['bashkit']}, commit {m['commit']}"
        f"{' (+ uncommitted changes)' if m['dirty'] else ''}; load average "
        f"{m['load_before'][0]} → {m['load_after'][0]} (machine shared: compare ratios, not "
        f"absolute times){'; --quick' if report['quick'] else ''}",
        "",
    ]
    if "dispatch" in res:
        d = res["dispatch"]
        peer = d[PEER]["calls_per_s"]["median"] if PEER in d else float("nan")
        rows = [
            [name, _spread(f["calls_per_s"], "/s"), _us(f["latency"]["p50"]),
             _us(f["latency"]["p99"]), f"{ratio(f['calls_per_s']['median'], peer):.2f}x"]
            for name, f in d.items()
        ]  # fmt: skip
        out.append('Dispatch: `execute_sync("noop")`, trivial `async def` callback, back to back')
        out += _table(["implementation", "calls/s median (min-max)", "p50", "p99",
                       f"vs {PEER}"], rows)  # fmt: skip
    if "idle_drop" in res and "abandoned_drop" in res:
        idle, ab = res["idle_drop"], res["abandoned_drop"]
        rows = [
            [name, _us(idle[name]["p50"]), _us(idle[name]["p99"]),
             _us(ab[name]["drop"]["p50"]), _us(ab[name]["drop"]["p99"]),
             _us(ab[name]["cancel_observed"]["p50"]), str(ab[name]["late"])]
            for name in idle
        ]  # fmt: skip
        out.append("Drop latency (`del tool`): idle after one call; with an abandoned callback "
                   "(and when it observed CancelledError, from the start of the drop)")  # fmt: skip
        out += _table(["implementation", "idle p50", "idle p99", "abandoned p50",
                       "abandoned p99", "cancel seen p50", "seen late"], rows)  # fmt: skip
    if "exit_stress" in res:
        e = res["exit_stress"]
        rows = []
        for payload, modes in e["payloads"].items():
            rm, se, fl = (_median(modes[k]) for k in ("run_many", "serial", "floor"))
            rows.append([payload, f"{rm:.1f}", f"{se:.1f}", f"{fl:.1f}",
                         f"{rm / fl:.0%}", f"{rm / se:.2f}x"])  # fmt: skip
        rounds = len(next(iter(e["payloads"].values()))["serial"])
        out.append(f"Exit stress: runs/s, {e['workers']} workers, {e['runs_per_round']} runs x "
                   f"{rounds} rounds (median)")  # fmt: skip
        out += _table(["payload", "run_many", "serial loop", "floor (bare parallel)",
                       "run_many / floor", "run_many / serial"], rows)  # fmt: skip
    if "verdicts" in res:
        v = res["verdicts"]
        rows = [
            [r["fault"] + (" (deadlock)" if r["deadlock"] else ""), r["check"],
             "—" if r["check_s"] is None else f"{r['check_s']:.1f} s", f"{r['process_s']:.1f} s",
             "yes" if r["caught"] else "**NO**"]
            for r in v["faults"]
        ]  # fmt: skip
        out.append(f"Kill matrix: time to verdict (hang bound {v['hang_bound_s']:g} s"
                   f"{', --quick subset' if v['quick'] else ''})")  # fmt: skip
        out += _table(["fault", "catching check", "check", "whole audit process", "caught"], rows)
    if "probes" in res:
        p = res["probes"]
        rows = [[name, _us(c["best"]), _us(c["median"])] for name, c in p["calls"].items()]
        out.append(f"Probe cost per call ({p['threads']} threads, {p['fds']} fds)")
        out += _table(["probe", "best", "median of 5"], rows)
    if res.get("audit_wall"):
        rows = [[f"CPython {r['python']}", f"{r['wall_s']:.1f} s", r["status"], r["summary"]]
                for r in res["audit_wall"]]  # fmt: skip
        out.append("`teardown-audit audit` (what `make audit` runs after its set-up)")
        out += _table(["interpreter", "wall", "exit", "summary"], rows)
    if report["targets"]:
        rows = [[t["target"], t["figure"], _fmt_target(t), "yes" if t["met"] else "**no**"]
                for t in report["targets"]]  # fmt: skip
        out.append("Targets")
        out += _table(["target", "figure", "value", "met"], rows)
    out += [f"- {note}" for note in report["notes"]]
    return "\n".join(out).rstrip() + "\n"


def _fmt_target(t: dict[str, Any]) -> str:
    value, bound = t["value"], t["bound"]
    if bound <= 1e-3:  # a latency in seconds
        return _us(value)
    if t["target"].startswith(("deadlock", "make audit")):
        return f"{value:.1f} s"
    return f"{value:.0%}" if bound < 1 else f"{value:.2f}x"


def write_json(path: str, report: dict[str, Any]) -> None:
    with open(path, "w") as f:
        json.dump(report, f, indent=2, sort_keys=True)
        f.write("\n")
