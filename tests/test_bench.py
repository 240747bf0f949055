"""The benchmarks' own code works: the pure-Python peer is a correct target (the audit's checks
pass on it), the table renders, the JSON has its fields. Functional only: no timing is asserted
anywhere (benchmarks are not tests); bounds below are hang bounds, far above healthy durations.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import os
import sys
import time

import pytest
from teardown_audit import probes
from teardown_audit.checks import cancellation, fds, own_thread_drop, queued, threads
from teardown_audit.settings import AuditSettings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # bench/ lives at the repository root, outside the installed package
    sys.path.insert(0, ROOT)

from bench import peer, table, targets  # noqa: E402
from bench.peer_adapter import SPEC  # noqa: E402
from bench.timing import latency, percentile, rate  # noqa: E402

HANG_BOUND = 30.0  # a safety net for the audit children, not a speed expectation
SETTINGS = AuditSettings(
    target=SPEC,
    thread_cycles=4,
    fd_cycles=6,
    cancel_bound=5.0,
    child_timeout=HANG_BOUND,
    exit_timeout=HANG_BOUND,
)


@pytest.fixture
def peer_on_path(monkeypatch):
    """The audit's children import the peer by module name: the repository root on PYTHONPATH."""
    paths = [ROOT, *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))


async def _noop(params, stdin):
    await asyncio.sleep(0)
    return f"ok {sorted(params.items())} {stdin!r}\n"


def _cat(params, stdin):
    return stdin


# -- the peer, in process -----------------------------------------------------------------------


@pytest.mark.parametrize("pool", [True, False])
def test_peer_runs_pipelines_and_reports_errors_like_the_reference(pool):
    tool = peer.ScriptedTool("api", pool=pool)
    tool.add_tool("noop", "", _noop)
    tool.add_tool("cat", "", _cat)
    tool.add_tool("bad", "", lambda params, stdin: 42)
    result = tool.execute_sync("noop --city Paris | cat")
    assert (result.exit_code, result.stdout) == (0, "ok [('city', 'Paris')] None\n")
    assert result.success
    assert tool.execute_sync("nope").exit_code == 127
    assert tool.execute_sync("noop |").exit_code == 2
    assert tool.execute_sync("noop positional").exit_code == 2
    assert tool.execute_sync("bad").exit_code == 1
    del tool
    assert not any(peer.stats().values())


def test_peer_drop_leaves_no_thread_fd_or_counter_behind():
    def cycle():
        tool = peer.ScriptedTool("api")
        tool.add_tool("noop", "", _noop)
        assert tool.execute_sync("noop").exit_code == 0
        del tool

    cycle()  # warm-up: imports, lazily created module state
    gc.disable()  # the contract: the drop alone does it
    try:
        threads_before, fds_before = probes.thread_count(), probes.fd_snapshot()
        for _ in range(5):
            cycle()
            assert probes.thread_count() <= threads_before
        diff = probes.fd_diff(fds_before, probes.fd_snapshot(), 5)
    finally:
        gc.enable()
    assert diff.net <= 0, diff.summary()
    assert not any(peer.stats().values()), peer.stats()


def test_peer_drop_cancels_an_abandoned_callback_before_returning():
    seen = []

    async def slow(params, stdin):
        try:
            await asyncio.sleep(HANG_BOUND)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        return "late"

    tool = peer.ScriptedTool("api", timeout_seconds=0.05)
    tool.add_tool("slow", "", slow)
    result = tool.execute_sync("slow")
    assert (result.exit_code, result.error) == (1, "timeout")
    assert peer.stats()["inflight"] == 1
    del tool
    assert seen == ["cancelled"]  # observed before the drop returned
    assert not any(peer.stats().values()), peer.stats()


def test_peer_rejects_calls_after_close_and_bash_passes_argv():
    bash = peer.Bash(custom_builtins={"hi": lambda ctx: f"{ctx.name} {ctx.argv}\n"})
    assert bash.execute_sync("hi a --b=c").stdout == "hi ['a', '--b=c']\n"
    bash.close()
    result = bash.execute_sync("hi")
    assert (result.exit_code, result.error) == (1, peer.REJECTED)
    del bash
    assert not any(peer.stats().values())


def test_peer_drop_on_its_own_loop_thread_hands_off_without_joining_itself():
    box = []

    def drop_self(ctx):
        box.pop()  # the last reference, dropped on the peer's own loop thread
        return "ok"

    box.append(peer.Bash(custom_builtins={"drop": drop_self}))
    assert box[0].execute_sync("drop").exit_code == 0
    deadline = time.monotonic() + HANG_BOUND
    while any(peer.stats().values()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(peer.stats().values()), peer.stats()


# -- the peer under the audit's own checks (children, like the CLI) -----------------------------


@pytest.mark.parametrize(
    "check",
    [threads, fds, cancellation, queued, own_thread_drop],
    ids=lambda m: m.__name__.rsplit(".", 1)[-1],
)
def test_the_audit_checks_pass_on_the_peer(peer_on_path, check):
    verdict = check.run(dataclasses.replace(SETTINGS))
    assert verdict.status == "pass", f"{verdict.reason}\n" + "\n".join(verdict.evidence)


# -- statistics, table, JSON --------------------------------------------------------------------


def test_percentiles_are_nearest_rank_samples():
    samples = [float(i) for i in range(1, 101)]
    assert percentile(samples, 50) == 50.0 and percentile(samples, 99) == 99.0
    assert latency([3.0, 1.0, 2.0])["p50"] == 2.0
    assert rate([1.0, 3.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0, "rounds": 3.0}


def _fake_report():
    lat = {"p50": 5e-5, "p99": 2e-4, "min": 1e-5, "max": 3e-4, "n": 10.0}
    impl = {
        "calls_per_s": {"median": 1000.0, "min": 900.0, "max": 1100.0, "rounds": 3.0},
        "latency": lat,
    }
    names = ["ref ScriptedTool", "ref Bash", targets.PEER]
    modes = {"run_many": [20.0], "serial": [10.0], "floor": [21.0]}
    results = {
        "dispatch": dict.fromkeys(names, impl),
        "idle_drop": dict.fromkeys(names, lat),
        "abandoned_drop": {n: {"drop": lat, "cancel_observed": lat, "late": 0} for n in names},
        "exit_stress": {
            "workers": 2,
            "runs_per_round": 10,
            "payloads": {"floor command": modes, "teardown_ref exit scripts": modes},
        },
        "verdicts": {
            "hang_bound_s": 8.0,
            "target_s": 11.0,
            "quick": True,
            "faults": [
                {
                    "fault": "join_holding_gil",
                    "check": "bounded-cancellation",
                    "deadlock": True,
                    "caught": True,
                    "check_s": 9.5,
                    "process_s": 10.2,
                    "reason": "hang ...",
                }
            ],
        },
        "probes": {
            "threads": 1,
            "fds": 6,
            "calls": {"thread_count": {"best": 8e-6, "median": 9e-6}},
        },
        "audit_wall": [
            {
                "python": "3.11.7",
                "venv": ".venv/bench-py3.11",
                "wall_s": 12.0,
                "status": "ok",
                "summary": "8 pass in 12.0 s",
            }
        ],
    }
    machine = {
        "cpu": "cpu",
        "cores": 2,
        "kernel": "6",
        "python": "3.11.7",
        "bashkit": "0.20.1",
        "commit": "abc",
        "dirty": False,
        "load_before": [1.0],
        "load_after": [1.5],
    }
    return {
        "machine": machine,
        "quick": True,
        "results": results,
        "targets": targets.judge(results),
        "notes": ["bashkit not installed"],
    }


def test_targets_are_judged_from_the_figures():
    judged = {(t["target"], t["figure"]): t["met"] for t in _fake_report()["targets"]}
    assert judged[("dispatch >= 2x the peer", f"ref Bash / {targets.PEER}")] is False
    assert judged[("idle drop p50 <= 0.1 ms", "ref Bash")] is True
    assert judged[("exit stress >= 90% of the floor", "run_many / floor (floor command)")]
    assert judged[("deadlock verdict <= hang bound + 3 s", "join_holding_gil")] is True
    assert judged[("make audit <= 60 s", "CPython 3.11.7")] is True


def test_table_renders_every_section_and_the_json_has_the_fields(tmp_path):
    report = _fake_report()
    text = table.render(report)
    for heading in ("Dispatch", "Drop latency", "Exit stress", "Kill matrix", "Probe cost",
                    "teardown-audit audit", "Targets", "bashkit not installed"):  # fmt: skip
        assert heading in text
    assert "| ref Bash | 1,000/s (900-1,100) | 50 µs | 200 µs | 1.00x |" in text
    path = tmp_path / "bench.json"
    table.write_json(str(path), report)
    data = json.loads(path.read_text())
    assert set(data) == {"machine", "quick", "results", "targets", "notes"}
    assert set(data["results"]) >= {"dispatch", "idle_drop", "abandoned_drop", "exit_stress"}
    assert {"target", "figure", "value", "bound", "met"} <= set(data["targets"][0])
