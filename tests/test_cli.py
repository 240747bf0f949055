"""The teardown-audit command: exit codes, one-line usage errors, table, JSON/JUnit, repro lines."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest
from teardown_audit.checks import AUDIT_CHECKS
from teardown_audit.isolated import HARNESS_ROOT as HARNESS_DIR
from teardown_audit.isolated import child_env
from teardown_audit.proc import descendants, kill_group, run_bounded

TARGETS = os.path.join(os.path.dirname(__file__), "targets")
CORRECT = os.path.join(TARGETS, "target_correct.py")


def cli(*args: str, timeout: float = 120.0):
    return run_bounded(
        [sys.executable, "-m", "teardown_audit", *args], timeout=timeout, env=child_env()
    )


def assert_one_line_usage_error(result, expected: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("teardown-audit: error: ")
    assert expected in lines[0]
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_unknown_target_is_one_line_exit_2():
    r = cli("audit", "--target", "no_such_thing")
    assert_one_line_usage_error(r, "unknown target 'no_such_thing'")


def test_import_error_in_target_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "broken_adapter.py"
    bad.write_text("import definitely_missing_module_xyz\n")
    r = cli("audit", "--target", str(bad))
    assert_one_line_usage_error(r, "import error in target")
    assert "No module named 'definitely_missing_module_xyz'" in r.stderr


def test_exception_on_import_names_the_line(tmp_path):
    bad = tmp_path / "raising_adapter.py"
    bad.write_text("x = 1\nraise RuntimeError('boom')\n")
    r = cli("audit", "--target", str(bad))
    assert_one_line_usage_error(r, "RuntimeError: boom (raising_adapter.py line 2)")


def test_missing_module_object_target_is_one_line_exit_2():
    r = cli("audit", "--target", "no_such_module_xyz:ADAPTER")
    assert_one_line_usage_error(r, "target module 'no_such_module_xyz' not found")


def test_file_without_adapter_is_one_line_exit_2(tmp_path):
    f = tmp_path / "no_adapter.py"
    f.write_text("VALUE = 1\n")
    r = cli("audit", "--target", str(f))
    assert_one_line_usage_error(r, "defines no adapter named ADAPTER or adapter")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["audit", "--exit-runs", "0"], "argument --exit-runs: must be at least 1: '0'"),
        (["audit", "--workers", "two"], "argument --workers: not an integer: 'two'"),
        (["exit-stress", "x.py", "-n", "-3"], "must be at least 1"),
        (["exit-stress", "x.py", "--timeout", "nan"], "must be a positive finite number"),
        (["churn", "--threads", "1.5"], "not an integer"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["exit-stress", "/no/such/script.py"], "script not found: /no/such/script.py"),
    ],
)
def test_invalid_input_is_one_line_exit_2(args, expected):
    assert_one_line_usage_error(cli(*args), expected)


def test_bashkit_target_is_audited_when_installed_and_one_line_exit_2_when_not():
    r = cli("audit", "--target", "bashkit", "--quick")
    try:
        import bashkit  # noqa: F401
    except ImportError:
        assert_one_line_usage_error(r, "target 'bashkit' is not installed (pip install")
    else:
        assert r.returncode == 0, r.stdout + r.stderr
        assert "teardown-audit: target bashkit " in r.stdout


def test_audit_passes_on_correct_target_with_table_json_and_junit(tmp_path):
    out_json, out_xml = tmp_path / "a.json", tmp_path / "a.xml"
    r = cli(
        "audit", "--target", CORRECT, "--quick", "--json", str(out_json), "--junit", str(out_xml)
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "threads-joined-on-drop   PASS" in r.stdout
    # Every check passes but queued-calls-rejected, skipped: the fake has no shared-loop object.
    assert f"{len(AUDIT_CHECKS) - 1} pass, 1 skip in" in r.stdout
    assert "queued-calls-rejected    SKIP" in r.stdout
    n = len(AUDIT_CHECKS)
    assert f"[{n}/{n}] strict-warnings: pass" in r.stderr  # progress goes to stderr
    report = json.loads(out_json.read_text())
    assert report["ok"] is True and len(report["verdicts"]) == n
    assert sorted(v["status"] for v in report["verdicts"]) == ["pass"] * (n - 1) + ["skip"]
    suite = ET.parse(out_xml).getroot()
    assert suite.get("tests") == str(n) and suite.get("failures") == "0"
    assert suite.get("skipped") == "1"


def test_audit_exit_1_with_reason_evidence_and_repro_on_a_broken_target(tmp_path):
    out_xml = tmp_path / "a.xml"
    target = os.path.join(TARGETS, "target_leaks_thread.py")
    r = cli(
        "audit", "--target", target, "--check", "threads-joined-on-drop", "--junit", str(out_xml)
    )
    assert r.returncode == 1, r.stdout + r.stderr
    assert "FAIL threads-joined-on-drop: +1 thread per cycle after drop" in r.stdout
    assert "  reproduce: " in r.stdout and "teardown_audit.isolated" in r.stdout
    assert "1 fail in" in r.stdout
    failure = ET.parse(out_xml).getroot().find("testcase/failure")
    assert failure is not None and failure.get("message", "").startswith("+1 thread per cycle")


def test_exit_stress_command_classifies_a_crashing_script(tmp_path):
    script = tmp_path / "crash.py"
    script.write_text("import os, signal\nsignal.signal(signal.SIGSEGV, signal.SIG_DFL)\n"
                      "os.kill(os.getpid(), signal.SIGSEGV)\n")  # fmt: skip
    r = cli("exit-stress", str(script), "-n", "4", "--workers", "2")
    assert r.returncode == 1
    assert "crash.py: 4/4 signal SIGSEGV" in r.stdout
    assert "reproduce: " in r.stdout


def test_exit_stress_command_passes_a_clean_script(tmp_path):
    script = tmp_path / "clean.py"
    script.write_text("print('bye')\n")
    r = cli("exit-stress", str(script), "-n", "3")
    assert r.returncode == 0, r.stdout
    assert "all 3 exits clean (clean.py: 3/3 ok)" in r.stdout


def test_churn_command_on_correct_target():
    r = cli("churn", "--target", CORRECT, "--threads", "2", "--iterations", "3")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "concurrent-churn  PASS" in r.stdout


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_leaves_no_process_behind(tmp_path, sig):
    """SIGINT in the middle of parallel exit runs: exit 130, every child process group killed."""
    script = tmp_path / "slow.py"
    script.write_text("import time\ntime.sleep(60)\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "teardown_audit", "exit-stress", str(script), "-n", "4",
         "--workers", "2"],
        env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
        # A shell starts background jobs with SIGINT ignored, and Python keeps it ignored:
        # restore the default so the CLI behaves as under an interactive Ctrl-C.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    children: list[int] = []
    try:
        deadline = time.monotonic() + 30
        while len(descendants(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        children = descendants(proc.pid)
        assert len(children) >= 2, "the exit runs never started"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert err.strip().splitlines()[-1] == "teardown-audit: interrupted", err
        alive = [p for p in children if os.path.exists(f"/proc/{p}") and _not_zombie(p)]
        assert alive == []
    finally:  # whatever happened above, this test leaves nothing running either
        for pid in [proc.pid, *children]:
            kill_group(pid, timeout=5)
        proc.wait(timeout=10)


def _not_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_documented_example_adapter_passes_the_audit():
    example = os.path.join(HARNESS_DIR, "teardown_audit", "adapters", "example_user_adapter.py")
    r = cli("audit", "--target", example, "--quick")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "teardown-audit: target example (stand-in client)" in r.stdout
