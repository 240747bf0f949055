"""The kill matrix: a fast subset runs in `make test`, one fault per check family, so CI notices
when a check stops catching the bug it exists for. `make killmatrix` runs every fault."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from teardown_audit import killmatrix
from teardown_audit.killmatrix import CASES, FaultCase, FaultResult, KillMatrix

BY_FAULT = {case.fault: case for case in CASES}

# (fault, the one check run for it): one per family of checks.
FAST_SUBSET = [
    ("hands_off", "threads-joined-on-drop"),  # threads outlive the drop
    ("deferred_loop_close", "fds-released-on-drop"),  # fds held until a GC pass
    ("join_holding_gil", "bounded-cancellation"),  # GIL deadlock: hang + diagnosis
    ("no_cancel", "bounded-cancellation"),  # drop lasts the callback
    ("no_closing_flag", "queued-calls-rejected"),
    ("join_self", "drop-on-own-thread"),
    ("attach_at_exit", "interpreter-exit-stress"),  # exit crash, with per-run chaos seeds
]


@pytest.mark.parametrize(("fault", "check"), FAST_SUBSET, ids=[f for f, _ in FAST_SUBSET])
def test_fault_is_caught_by_its_check_naming_the_cause(fault, check):
    case = BY_FAULT[fault]
    assert case.expect == check
    why_not = case.not_applicable(killmatrix.interpreter_facts(sys.executable))
    if why_not:  # by design, for this interpreter (see FaultCase.not_applicable)
        pytest.skip(why_not)
    result = killmatrix.run_case(case, checks=[check])
    verdict = result.verdicts.get(check, {})
    assert not result.problem, result.problem
    assert verdict.get("status") == "fail", f"{fault} not caught by {check}: {verdict}"
    assert result.names_cause, (
        f"{check} failed on {fault} but its diagnosis does not name the cause"
        f" {case.cause}: {verdict.get('reason')}"
    )
    assert result.caught


def test_correct_build_passes_the_same_checks():
    checks = sorted({check for _, check in FAST_SUBSET})
    result = killmatrix.run_case(BY_FAULT["none"], checks=checks)
    failing = {c: v["reason"] for c, v in result.verdicts.items() if v["status"] != "pass"}
    assert not failing and result.caught, failing
    assert set(result.verdicts) == set(checks)


def test_every_fault_of_the_reference_has_a_case():
    proc = subprocess.run(
        [sys.executable, "-c", "import teardown_ref; print(*teardown_ref.FAULTS)"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    faults = set(proc.stdout.split())
    # racy_flag is a data race without a functional symptom: ThreadSanitizer catches it.
    assert faults - {"racy_flag"} == set(BY_FAULT), faults ^ set(BY_FAULT)


def _result(fault: str, statuses: dict[str, str], reason: str = "") -> FaultResult:
    verdicts = {
        c: {"check": c, "status": s, "reason": reason, "evidence": []} for c, s in statuses.items()
    }
    return FaultResult(BY_FAULT[fault], verdicts, 1.0, "repro")


def test_caught_needs_the_expected_check_to_fail_naming_the_cause():
    case = BY_FAULT["deferred_loop_close"]
    words = " ".join(case.cause)
    assert _result(case.fault, {case.expect: "fail"}, words).caught
    assert not _result(case.fault, {case.expect: "fail"}, "some other reason").caught
    assert not _result(case.fault, {case.expect: "pass"}, words).caught
    assert not _result(case.fault, {"threads-joined-on-drop": "fail"}, words).caught
    assert not _result("none", {case.expect: "fail"}).caught
    assert _result("none", {case.expect: "pass", "strict-warnings": "skip"}).caught


def test_table_is_free_of_timings_and_marks_misses():
    matrix = KillMatrix(
        [
            _result("none", {"fds-released-on-drop": "pass"}),
            _result("deferred_loop_close", {"fds-released-on-drop": "pass"}),
        ]
    )
    table = killmatrix.verdict_table(matrix)
    assert "| none | the correct protocol |" in table
    assert "**NO**" in table and "**·**" in table
    assert not matrix.ok
    assert "1.0" not in table  # elapsed times stay out: two runs give the same table


def test_write_into_replaces_only_the_marked_section(tmp_path):
    spec = tmp_path / "scenarios.md"
    spec.write_text(f"before\n{killmatrix.BEGIN}\nold\n{killmatrix.END}\nafter\n")
    matrix = KillMatrix([_result("none", {"fds-released-on-drop": "pass"})])
    killmatrix.write_into(str(spec), matrix, "header")
    text = spec.read_text()
    assert text.startswith("before\n") and text.endswith("after\n")
    assert "old" not in text and "| none |" in text
    spec.write_text("no markers\n")
    with pytest.raises(ValueError, match="no <!-- killmatrix:begin -->"):
        killmatrix.write_into(str(spec), matrix, "header")


def test_unknown_fault_is_a_usage_error():
    proc = subprocess.run(
        [sys.executable, "-m", "teardown_audit", "killmatrix", "--fault", "bogus"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("teardown-audit: error: unknown fault")
    with pytest.raises(ValueError, match="unknown fault 'bogus'"):
        killmatrix.select_cases(["bogus"])
    assert isinstance(killmatrix.select_cases(None)[0], FaultCase)


def test_rows_not_applicable_to_the_interpreter_are_not_run(monkeypatch):
    """Without a GIL the GIL-deadlock faults are n/a; on 3.14+ the V3 exit crash is (a late
    attach hangs instead). Those audits are not run; every other fault still must be caught."""
    assert {c.fault for c in CASES if c.needs_gil} == {"rendezvous_dispatch", "join_holding_gil"}
    ran: list[str] = []

    def fake_run_case(case: FaultCase, **kw: object) -> FaultResult:
        ran.append(case.fault)  # caught: its check fails naming the cause
        if not case.expect:
            return _result(case.fault, {"strict-warnings": "pass"})
        return _result(case.fault, {case.expect: "fail"}, " ".join(case.cause))

    monkeypatch.setattr(killmatrix, "run_case", fake_run_case)
    cases = [BY_FAULT[f] for f in ("join_holding_gil", "attach_at_exit", "none")]

    def run_on(version: tuple[int, int], gil: bool) -> KillMatrix:
        facts = killmatrix.InterpreterFacts(version, gil)
        monkeypatch.setattr(killmatrix, "interpreter_facts", lambda python: facts)
        ran.clear()
        return killmatrix.run_matrix(cases)

    matrix = run_on((3, 13), gil=False)
    assert ran == ["attach_at_exit", "none"]
    skipped = matrix.results[0]
    assert skipped.not_applicable and not skipped.caught and matrix.ok
    row = next(r for r in killmatrix.verdict_table(matrix).splitlines() if "join_holding" in r)
    assert "| n/a | a GIL deadlock; this build runs without a GIL |" in row
    assert all("join_holding" not in line for line in killmatrix.diagnosis_lines(matrix))

    matrix = run_on((3, 14), gil=True)
    assert ran == ["join_holding_gil", "none"]
    assert "hangs a late attach" in matrix.results[1].not_applicable

    run_on((3, 12), gil=True)
    assert ran == ["join_holding_gil", "attach_at_exit", "none"]


def test_interpreter_probe_answers_for_this_one_and_rejects_a_broken_one(tmp_path):
    facts = killmatrix.interpreter_facts(sys.executable)
    assert facts.version == sys.version_info[:2]
    assert facts.gil is bool(getattr(sys, "_is_gil_enabled", lambda: True)())
    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\necho 'ModuleNotFoundError: teardown_ref' >&2\nexit 1\n")
    broken.chmod(0o755)
    with pytest.raises(ValueError, match="cannot import teardown_ref: ModuleNotFoundError"):
        killmatrix.interpreter_facts(str(broken))
