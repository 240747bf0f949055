"""The bounded runner, the hang evidence and the external watchdog, against real deadlocks.

The deadlocks come from tests/targets/gil_deadlock/gil_deadlock.c, built for the interpreter
running the tests. Timeouts are verdict deadlines, not performance assertions: each child is
stuck (or done) within a fraction of a second, so a few seconds is a wide margin.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import signal
import sys
import textwrap
import time

import pytest
from teardown_audit.proc import RunResult, group_members, reproduce_command, run_bounded
from teardown_audit.stacks import ptrace_scope

# A deadlocked child is stuck ~0.1 s after start; HANG_TIMEOUT is when we call it a hang.
HANG_TIMEOUT = 3.0
# Outer bound for runs that must finish on their own (build, healthy child, watchdog demo).
SAFETY_TIMEOUT = 60.0
# How long the in-process watchdog lets the guarded process hang before firing.
WATCHDOG_SECONDS = 1.5
# SIGKILL and reaping are asynchronous; a process that is going away must be gone within this.
GONE_TIMEOUT = 10.0

HERE = os.path.dirname(os.path.abspath(__file__))
TARGET_C = os.path.join(HERE, "targets", "gil_deadlock", "gil_deadlock.c")
HARNESS = os.path.join(os.path.dirname(HERE), "harness")


def _load_builder():
    # By path: the tests directory is not a package, whatever pytest's import mode.
    spec = importlib.util.spec_from_file_location(
        "_td_build", os.path.join(HERE, "targets", "build.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def ext_dir(tmp_path_factory):
    """Directory holding gil_deadlock built for this interpreter."""
    return _load_builder().build_extension(TARGET_C, str(tmp_path_factory.mktemp("gil_deadlock")))


def _script(tmp_path, ext_dir, body):
    path = tmp_path / "child.py"
    header = f"import sys\nsys.path.insert(0, {ext_dir!r})\nsys.path.insert(0, {HARNESS!r})\n"
    path.write_text(header + textwrap.dedent(body))
    return str(path)


# The Python frame name every deadlock child uses, so the faulthandler dump can be checked.
CALL = """
import resource, threading, time
import gil_deadlock

def call_the_extension(mode):
    if mode == "crash":
        # Allow a core file as far as the hard limit lets us: only run_bounded's own limit
        # (hard = 0) may keep the crash from leaving one behind.
        hard = resource.getrlimit(resource.RLIMIT_CORE)[1]
        resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))
    print("calling", mode, flush=True)
    getattr(gil_deadlock, mode)()

# A bystander Python thread asleep with the GIL released, as in any real process: the diagnosis
# must not mistake it for the GIL holder.
threading.Thread(target=time.sleep, args=(1000,), name="bystander", daemon=True).start()
call_the_extension(sys.argv[1])
"""


def _alive(pid):
    """True while pid exists and is not a zombie (a zombie holds nothing and runs nothing)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except FileNotFoundError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


def wait_gone(pids, timeout=GONE_TIMEOUT):
    start = time.monotonic()
    alive = list(pids)
    while alive and time.monotonic() - start < timeout:
        alive = [p for p in alive if _alive(p)]
        time.sleep(0.01)
    alive = [p for p in alive if _alive(p)]
    dt = time.monotonic() - start
    assert not alive, f"{len(alive)} of {len(pids)} processes still alive after {dt:.1f}s: {alive}"


def assert_group_gone(res: RunResult):
    """No live member right away (run_bounded's promise); then the group id itself must vanish.
    Killed grandchildren are reparented to PID 1, which reaps them when it gets to it (~2 s in
    this container), so the second part waits, bounded, and accepts only init's zombies."""
    assert res.pid is not None
    live = group_members(res.pid)
    assert not live, f"{len(live)} live processes in group {res.pid} after run_bounded returned"
    start = time.monotonic()
    while time.monotonic() - start < GONE_TIMEOUT:
        try:
            os.killpg(res.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)
    ours = [p for p in _zombies_of(res.pid) if p[1] == os.getpid()]
    assert not ours, f"{len(ours)} unreaped children of ours in group {res.pid}: {ours}"


def _zombies_of(pgid):
    out = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if int(fields[2]) == pgid:
            out.append((int(entry), int(fields[1])))
    return out


def describe(res: RunResult) -> str:
    hang = res.hang.format() if res.hang else "(no hang report)"
    return (
        f"verdict={res.verdict} rc={res.returncode} after {res.elapsed:.2f}s "
        f"notes={res.notes}\n--- stdout\n{res.stdout[-2000:]}\n--- stderr\n{res.stderr[-3000:]}\n"
        f"{hang}"
    )


def run_mode(tmp_path, ext_dir, mode) -> RunResult:
    return run_bounded(
        [sys.executable, _script(tmp_path, ext_dir, CALL), mode], timeout=HANG_TIMEOUT
    )


def test_gil_deadlock_is_a_hang_with_both_stacks_and_a_named_diagnosis(tmp_path, ext_dir):
    res = run_mode(tmp_path, ext_dir, "join_holding_gil")
    assert res.timed_out and res.verdict == "hang" and res.returncode is None, describe(res)
    assert "calling join_holding_gil" in res.stdout, describe(res)
    hang = res.hang
    assert hang is not None and hang.pid == res.pid, describe(res)
    assert "call_the_extension" in hang.python_stacks, describe(res)
    assert hang.native_tool in ("eu-stack", "gdb", "pystack"), describe(res)
    assert re.search(r"pthread_(clock)?join", hang.native_stacks), describe(res)
    assert "join_holding_gil" in hang.native_stacks, describe(res)
    m = re.match(
        r"tid (\d+) \(.*\) is joining tid (\d+) \(.*\) while holding the GIL; "
        r"tid (\d+) is waiting for the GIL",
        hang.diagnosis,
    )
    assert m, describe(res)
    joiner, joined, waiter = (int(g) for g in m.groups())
    assert joiner == res.pid and joined == waiter != joiner, describe(res)
    roles = {t["tid"]: t["role"] for t in hang.threads}
    assert "holds the GIL" in roles[joiner] and "waiting for the GIL" in roles[joined], roles
    assert_group_gone(res)


def test_lock_order_deadlock_is_named_as_one_without_the_gil(tmp_path, ext_dir):
    res = run_mode(tmp_path, ext_dir, "lock_order")
    assert res.timed_out and res.hang is not None, describe(res)
    line = res.hang.diagnosis
    assert line.startswith("lock-order deadlock without the GIL: "), describe(res)
    owners = re.findall(r"waits for mutex 0x[0-9a-f]+ held by tid (\d+)", line)
    assert len(owners) == 2 and owners[0] != owners[1], describe(res)
    assert "no thread waits for the GIL" in line and "holding the GIL" not in line, describe(res)
    assert_group_gone(res)


def test_gil_held_across_a_blocking_syscall_names_the_holder(tmp_path, ext_dir):
    res = run_mode(tmp_path, ext_dir, "block_holding_gil")
    assert res.timed_out and res.hang is not None, describe(res)
    line = res.hang.diagnosis
    want = f"is waiting for the GIL held by tid {res.pid} "
    assert want in line and "pause" in line and "joining" not in line, describe(res)
    assert_group_gone(res)


def test_healthy_child_is_no_hang(tmp_path):
    script = tmp_path / "ok.py"
    script.write_text("import sys\nprint('hello', sys.stdin.read())\nsys.exit(3)\n")
    res = run_bounded([sys.executable, str(script)], timeout=SAFETY_TIMEOUT, stdin_text="world")
    assert not res.timed_out and res.hang is None, describe(res)
    assert res.returncode == 3 and res.signal is None and res.verdict == "exit 3", describe(res)
    assert res.stdout == "hello world\n", describe(res)
    assert_group_gone(res)


def test_child_killed_by_sigsegv_is_named(tmp_path, ext_dir):
    argv = [sys.executable, _script(tmp_path, ext_dir, CALL), "crash"]
    res = run_bounded(argv, timeout=SAFETY_TIMEOUT, cwd=str(tmp_path))
    assert not res.timed_out and res.hang is None, describe(res)
    assert res.returncode == -signal.SIGSEGV and res.signal == "SIGSEGV", describe(res)
    assert "Segmentation fault" in res.stderr, describe(res)  # faulthandler, enabled by us
    assert not list(tmp_path.glob("core*")), "the crash left a core file in the child's cwd"
    assert_group_gone(res)


GRANDCHILD = """
import subprocess, time
g = subprocess.Popen(["sleep", "1000"])
print(g.pid, flush=True)
{after}
"""


def test_grandchild_dies_with_a_hung_child(tmp_path, ext_dir):
    body = GRANDCHILD.format(after="time.sleep(1000)")
    res = run_bounded([sys.executable, _script(tmp_path, ext_dir, body)], timeout=HANG_TIMEOUT)
    assert res.timed_out and res.hang is not None, describe(res)
    # A child asleep in time.sleep is not deadlocked: the diagnosis must not invent one.
    assert res.hang.diagnosis.startswith("no deadlock pattern found; "), describe(res)
    assert "time.sleep" not in res.hang.diagnosis
    wait_gone([int(res.stdout.split()[0])])
    assert_group_gone(res)


def test_grandchild_left_behind_by_an_exited_child_is_killed(tmp_path, ext_dir):
    body = GRANDCHILD.format(after="")
    res = run_bounded([sys.executable, _script(tmp_path, ext_dir, body)], timeout=SAFETY_TIMEOUT)
    assert res.returncode == 0 and not res.timed_out, describe(res)
    assert res.leftovers_killed == 1, describe(res)
    assert res.elapsed < SAFETY_TIMEOUT, describe(res)
    wait_gone([int(res.stdout.split()[0])])
    assert_group_gone(res)


def test_keyboard_interrupt_kills_the_group_and_reraises(tmp_path, ext_dir):
    pids = tmp_path / "pids"
    body = f"""
    import os, subprocess, time
    g = subprocess.Popen(["sleep", "1000"])
    open({str(pids)!r} + ".tmp", "w").write(f"{{os.getpid()}} {{g.pid}}")
    os.rename({str(pids)!r} + ".tmp", {str(pids)!r})
    time.sleep(1000)
    """

    def interrupt(signum, frame):
        if not pids.exists():  # only once the child has told us its pids
            signal.setitimer(signal.ITIMER_REAL, 0.05)
            return
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.05)
    try:
        with pytest.raises(KeyboardInterrupt):
            run_bounded([sys.executable, _script(tmp_path, ext_dir, body)], timeout=SAFETY_TIMEOUT)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    child, grandchild = (int(p) for p in pids.read_text().split())
    wait_gone([child, grandchild])
    assert not group_members(child)


def test_output_is_capped_with_a_marker_and_nothing_is_lost_at_the_ends(tmp_path):
    code = "import sys; sys.stdout.write('A' + 'x' * 8_000_000 + 'Z'); sys.stdout.flush()"
    res = run_bounded([sys.executable, "-c", code], timeout=SAFETY_TIMEOUT)
    assert res.returncode == 0, describe(res)
    assert res.stdout.startswith("A") and res.stdout.endswith("Z"), len(res.stdout)
    assert "bytes of output omitted]" in res.stdout and len(res.stdout) < 4_000_000


def test_reproduce_command_round_trips_and_keeps_only_changed_env():
    argv = [sys.executable, "-c", "print('a b')"]
    env = {"TD_AUDIT_X": "1 2", "PATH": os.environ.get("PATH", "")}
    cmd = reproduce_command(argv, env)
    assert shlex.split(cmd) == ["env", "TD_AUDIT_X=1 2", *argv], cmd
    assert reproduce_command(argv) == " ".join(shlex.quote(a) for a in argv)


GUARDED = """
import os
from teardown_audit.watchdog import ExternalWatchdog

wd = ExternalWatchdog({seconds}, "test_guarded", report_path={report!r})
for _ in range(3):  # the watcher is reused across tests
    wd.arm()
    wd.disarm()
wd.arm()
print(wd.watcher_pid, wd._dump_path, flush=True)
{body}
wd.disarm()
wd.close()
print("closed", flush=True)
"""


def _guarded(tmp_path, ext_dir, body):
    report = str(tmp_path / "report.txt")
    text = GUARDED.format(seconds=WATCHDOG_SECONDS, report=report, body=body)
    res = run_bounded([sys.executable, _script(tmp_path, ext_dir, text)], timeout=SAFETY_TIMEOUT)
    watcher, dump_path = res.stdout.split()[:2]
    wait_gone([int(watcher)])
    return res, report, dump_path


def test_external_watchdog_reports_and_kills_a_deadlocked_process(tmp_path, ext_dir):
    body = CALL.replace("sys.argv[1]", "'join_holding_gil'")
    res, report_path, dump_path = _guarded(tmp_path, ext_dir, body)
    assert res.signal == "SIGKILL" and not res.timed_out, describe(res)
    assert "closed" not in res.stdout, describe(res)
    with open(report_path) as f:
        report = f.read()
    assert "'test_guarded' still running after" in report, report
    assert "call_the_extension" in report and "join_holding_gil" in report, report
    assert re.search(r"pthread_(clock)?join", report), report
    assert re.search(r"is joining tid \d+ .* while holding the GIL; tid \d+ is waiting", report)
    assert report in res.stderr, "the report must also reach the inherited stderr"
    assert not os.path.exists(dump_path), "the faulthandler dump file was left behind"
    assert_group_gone(res)


def test_external_watchdog_disarmed_in_time_stays_silent(tmp_path, ext_dir):
    res, report_path, dump_path = _guarded(tmp_path, ext_dir, "pass")
    assert res.returncode == 0 and res.stdout.endswith("closed\n"), describe(res)
    assert not os.path.exists(report_path), "a disarmed watchdog wrote a report"
    assert not os.path.exists(dump_path)
    assert_group_gone(res)


def test_ptrace_scope_is_read_when_present():
    scope = ptrace_scope()
    if os.path.exists("/proc/sys/kernel/yama/ptrace_scope"):
        assert scope in (0, 1, 2, 3)
    else:
        assert scope is None
