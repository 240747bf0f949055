"""Hang evidence (HangReport, capture_hang) and an external watchdog for the current process.

The watchdog must work when the guarded process is wedged in C with the GIL held, so nothing
in the guarded process can be relied on after arming: the watcher is a separate process (own
process group) that ptrace-samples the guarded process from outside, asks faulthandler for the
Python stacks with a signal (a C handler: it needs no GIL), writes the report and kills it.

Protocol on the watcher's stdin, one line per command:
    ARM <monotonic deadline> <label>   (CLOCK_MONOTONIC is system-wide on Linux)
    DISARM
    EOF -> the watcher exits (so it dies with the guarded process, never orphaned for long).
"""

from __future__ import annotations

import faulthandler
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import IO, Any, Optional

from teardown_audit.diagnosis import classify, diagnose, merge_samples, sample_threads
from teardown_audit.proc import descendants
from teardown_audit.stacks import allow_ptrace_from, capture_native, ptrace_needs_permission

DUMP_SIGNAL = signal.SIGUSR2
# faulthandler writes from inside the signal handler in a few ms; stop waiting when the file
# has not grown for DUMP_QUIET or after DUMP_TIMEOUT in total.
DUMP_QUIET = 0.2
DUMP_TIMEOUT = 5.0
WATCHER_EXIT_TIMEOUT = 10.0


@dataclass
class HangReport:
    pid: int
    python_stacks: str  # faulthandler output of all threads ("" if unavailable: see notes)
    native_stacks: str
    native_tool: str  # "eu-stack" | "gdb" | "pystack" | "none: <reason>"
    diagnosis: str  # ONE line
    threads: list[dict[str, Any]]  # per tid: name, state, syscall summary, role guess
    notes: list[str] = field(default_factory=list)
    capture_seconds: float = 0.0

    def format(self) -> str:
        lines = [
            f"=== hang evidence for pid {self.pid} ===",
            f"diagnosis: {self.diagnosis}",
            "threads:",
        ]
        for t in self.threads:
            lines.append(
                f"  tid {t['tid']} {t['name']!r} state={t['state']} {t['syscall']}"
                f" wchan={t['wchan'] or '-'} in {t['blocked_in']} [{t['role']}]"
            )
        lines.append(f"--- python stacks (faulthandler) ---\n{self.python_stacks.rstrip()}")
        lines.append(f"--- native stacks ({self.native_tool}) ---\n{self.native_stacks.rstrip()}")
        lines.extend(f"note: {n}" for n in self.notes)
        lines.append(f"(evidence captured in {self.capture_seconds:.2f}s)")
        return "\n".join(lines)


def capture_hang(pid: int) -> HangReport:
    """Native stacks + /proc state + diagnosis of a live, stuck process. Python stacks are left
    to the caller, which owns the process's stderr (run_bounded) or its dump file (watchdog)."""
    start = time.monotonic()
    before = sample_threads(pid)
    native = capture_native(pid)
    threads = merge_samples(before, sample_threads(pid))
    classify(pid, threads, native)
    report = HangReport(
        pid=pid,
        python_stacks="",
        native_stacks=native.text,
        native_tool=native.tool,
        diagnosis=diagnose(pid, threads, native),
        threads=[t.to_dict() for t in threads.values()],
    )
    if not threads:
        report.notes.append(f"pid {pid} had no readable /proc/{pid}/task (already gone?)")
    _add_probe_stacks(pid, report)
    report.capture_seconds = time.monotonic() - start
    return report


def _environ(pid: int) -> dict[str, str]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            raw = f.read()
    except OSError:
        return {}
    pairs = (item.decode(errors="replace").partition("=") for item in raw.split(b"\0") if item)
    return {name: value for name, _, value in pairs}


# A probed process dumps its own threads within milliseconds; beyond this it is not answering.
PROBE_REPORT_BOUND = 5.0


def _add_probe_stacks(pid: int, report: HangReport) -> None:
    """With the attribution probe loaded in `pid`, its threads write their own backtraces on a
    signal: native stacks without ptrace, each thread labelled with its creating library. They
    complete (or, where ptrace is forbidden, replace) what eu-stack/gdb saw."""
    try:
        with open(f"/proc/{pid}/maps") as f:
            probed = "libteardown_probe.so" in f.read()
    except OSError:
        return
    if not probed:
        return
    from teardown_audit.native.watchdog import read_report, report_path, trigger

    # The probe writes where the process was told to (TEARDOWN_PROBE_REPORT); a report already
    # there (its own deadline dump) is the earlier, better one: read it rather than overwrite it.
    path = _environ(pid).get("TEARDOWN_PROBE_REPORT") or report_path(pid)
    try:
        dump = read_report(path, bound=0.05) or trigger(pid, path, bound=PROBE_REPORT_BOUND)
    except OSError as exc:
        report.notes.append(f"probe watchdog not triggered: {exc}")
        return
    if dump is None:
        report.notes.append(f"probe watchdog: no report within {PROBE_REPORT_BOUND:g} s")
        return
    lines = [f"--- probe (no ptrace): {len(dump.threads)} threads ---"]
    for t in dump.threads:
        lines.append(f"thread {t.tid} '{t.name}' created by {t.lineage}")
        lines += ["  " + frame for frame in t.frames]
    lines += dump.missing
    text = "\n".join(lines)
    if report.native_tool.startswith("none"):
        report.native_tool = f"probe (no ptrace; {report.native_tool})"
        report.native_stacks = text
    else:
        report.native_stacks += "\n" + text


def _package_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ExternalWatchdog:
    """Guards the *current* process: arm() before a test, disarm() after; close() at the end."""

    def __init__(
        self,
        seconds: float,
        label: str,
        report_path: Optional[str] = None,
        stderr_fd: int = 2,
    ) -> None:
        # stderr_fd: under pytest's fd capture, fd 2 is a temp file while a test runs; a plugin
        # can pass a dup of the real terminal fd taken before capture starts.
        self.seconds = seconds
        self.label = label
        self.report_path = report_path
        self.stderr_fd = stderr_fd
        self._proc: Optional[subprocess.Popen[bytes]] = None
        self._dump: Optional[IO[bytes]] = None
        self._dump_path = ""

    @property
    def watcher_pid(self) -> Optional[int]:
        return self._proc.pid if self._proc is not None else None

    def _start(self) -> subprocess.Popen[bytes]:
        fd, dump_path = tempfile.mkstemp(prefix="teardown-audit-pydump-")
        self._dump = os.fdopen(fd, "w+b", buffering=0)
        self._dump_path = dump_path
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (_package_root(), env.get("PYTHONPATH", "")) if p
        )
        argv = [
            sys.executable, "-c", "from teardown_audit.watchdog import _watcher_main as m; m()",
            str(os.getpid()), dump_path, self.report_path or "",
        ]  # fmt: skip
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=self.stderr_fd,
            env=env,
            start_new_session=True,  # a killpg aimed at our group must not take the watcher
        )
        if ptrace_needs_permission() and not allow_ptrace_from(proc.pid):
            # Not fatal: the report will then say "none: ..." for the native stacks.
            print("teardown-audit watchdog: prctl(PR_SET_PTRACER) failed", file=sys.stderr)
        # all_threads: the hang is usually between threads; chain=False: nothing else to run.
        faulthandler.register(DUMP_SIGNAL, file=self._dump, all_threads=True, chain=False)
        return proc

    def _send(self, line: str) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write(line.encode() + b"\n")
        self._proc.stdin.flush()

    def arm(self) -> None:
        if self._proc is None:
            self._proc = self._start()
        label = self.label.replace("\n", " ")
        self._send(f"ARM {time.monotonic() + self.seconds:.6f} {self.seconds} {label}")

    def disarm(self) -> None:
        if self._proc is not None:
            self._send("DISARM")

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            assert proc.stdin is not None
            proc.stdin.close()  # EOF: the watcher exits
            proc.wait(timeout=WATCHER_EXIT_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=WATCHER_EXIT_TIMEOUT)
        faulthandler.unregister(DUMP_SIGNAL)
        if self._dump is not None:
            self._dump.close()
            try:
                os.unlink(self._dump_path)
            except FileNotFoundError:
                pass
            self._dump = None

    def __enter__(self) -> ExternalWatchdog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_dump(pid: int, path: str) -> tuple[str, str]:
    """Signal faulthandler in pid and return (new text in the dump file, note)."""
    try:
        offset = os.path.getsize(path)
        os.kill(pid, DUMP_SIGNAL)
    except OSError as exc:
        return "", f"python stacks unavailable: {exc}"
    start = last_change = time.monotonic()
    size = offset
    while time.monotonic() - start < DUMP_TIMEOUT:
        time.sleep(0.02)
        now_size = os.path.getsize(path)
        if now_size != size:
            size, last_change = now_size, time.monotonic()
        elif size > offset and time.monotonic() - last_change >= DUMP_QUIET:
            break
    with open(path, "rb") as f:
        f.seek(offset)
        text = f.read().decode("utf-8", "replace")
    return text, "" if text else f"faulthandler wrote nothing within {DUMP_TIMEOUT:.0f}s"


def _fire(pid: int, label: str, seconds: str, dump_path: str, report_path: str) -> None:
    report = capture_hang(pid)  # native first: the dump signal must not disturb the stacks
    report.python_stacks, note = _read_dump(pid, dump_path)
    if note:
        report.notes.append(note)
    text = f"teardown-audit watchdog: {label!r} still running after {seconds}s\n{report.format()}\n"
    if report_path:
        with open(report_path, "w") as f:
            f.write(text)
    os.write(2, text.encode())
    me = os.getpid()
    # Children first (they are our siblings' and the guarded process's), then the process.
    for p in [*reversed(descendants(pid)), pid]:
        if p != me:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _watcher_main() -> None:
    pid, dump_path = int(sys.argv[1]), sys.argv[2]
    try:
        _watch(pid, dump_path, sys.argv[3])
    finally:
        # The guarded process may never reach close() (we killed it, or it crashed).
        try:
            os.unlink(dump_path)
        except FileNotFoundError:
            pass


def _watch(pid: int, dump_path: str, report_path: str) -> None:
    stdin = sys.stdin.fileno()
    buf = b""
    deadline: Optional[float] = None
    label = seconds = ""
    while True:
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        ready, _, _ = select.select([stdin], [], [], wait)
        if not ready:
            _fire(pid, label, seconds, dump_path, report_path)
            return
        chunk = os.read(stdin, 4096)
        if not chunk:
            return  # the guarded process closed the pipe or died
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            words = line.decode().split(" ", 3)
            if words[0] == "ARM":
                deadline, seconds, label = float(words[1]), words[2], words[3]
            elif words[0] == "DISARM":
                deadline = None
