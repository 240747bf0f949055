"""The regression scenarios: each has a header, is catalogued, passes on the reference, and
fails with its diagnosis on the fault it exists for."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from teardown_audit import scenarios
from teardown_audit.scenario import parse_header

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCENARIO_DIR = os.path.join(ROOT, "scenarios")
# A hang bound for the fault runs that deadlock: healthy scenarios take well under 2 s.
HANG_BOUND = 8.0

ALL = scenarios.discover(SCENARIO_DIR)
BY_ID = {s.id: s for s in ALL}


def test_catalogue_in_specs_is_generated_from_the_headers():
    with open(os.path.join(ROOT, "specs", "scenarios.md")) as f:
        spec = f.read()
    assert scenarios.catalogue(ALL) in spec, "specs/scenarios.md: regenerate the catalogue"
    assert {
        "v0-timeout-honoured",
        "v2-drop-with-abandoned-callback",
        "v5-drop-on-own-thread",
        "exit-clean",
        "v3-exit-abandoned",
    } <= set(BY_ID)


def test_header_parsing():
    doc = "Title.\n\nid: x\norigin: a\n  continued\ncorrect: c\nbroken: b\n"
    assert parse_header(doc) == {"id": "x", "origin": "a continued", "correct": "c", "broken": "b"}
    with pytest.raises(ValueError, match="lacks origin, broken"):
        parse_header("id: x\ncorrect: c\n")


def test_every_scenario_passes_on_the_reference():
    results = scenarios.run_scenarios(ALL, target="teardown_ref", timeout=60)
    bad = {r.scenario.id: r.diagnosis for r in results if not r.ok}
    assert not bad, bad


@pytest.mark.parametrize(
    ("scenario", "fault", "diagnosis"),
    [
        ("v2-drop-with-abandoned-callback", "join_holding_gil", "while holding the GIL"),
        ("v2-drop-with-abandoned-callback", "no_cancel", "instead of cancelling"),
        ("v4a-threads-joined", "hands_off", "not joined"),
        ("v4b-fds-released", "deferred_loop_close", "an asyncio loop not closed"),
        ("queued-calls-rejected", "no_closing_flag", "not rejected"),
        ("v5-drop-on-own-thread", "join_self", "never torn down"),
        ("v1-first-call", "rendezvous_dispatch", "waiting for the GIL"),
    ],
)
def test_scenario_fails_on_its_fault(scenario, fault, diagnosis):
    (result,) = scenarios.run_scenarios(
        [BY_ID[scenario]],
        target="teardown_ref",
        timeout=HANG_BOUND,
        env={"TEARDOWN_REF_FAULT": fault},
    )
    assert not result.ok, f"{scenario} passed with {fault} injected"
    assert diagnosis in result.diagnosis, result.diagnosis
    assert "TEARDOWN_REF_FAULT=" + fault in result.repro


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["scenarios", "nope"], "unknown scenario 'nope'"),
        (["scenarios", "--dir", "/nonexistent"], "no scenario directory '/nonexistent'"),
        (["scenarios", "--target", "no_such_module_xyz"], "unknown target 'no_such_module_xyz'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message):
    proc = subprocess.run(
        [sys.executable, "-m", "teardown_audit", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 2, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
