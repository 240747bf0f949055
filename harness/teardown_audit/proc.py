"""Bounded subprocess runner: every child gets a deadline, its own process group and a reaper.

A hung child is the thing this project exists to find, so the runner treats a timeout as data:
it captures native + Python stacks and a one-line diagnosis *before* killing the group.
Nothing the runner starts may outlive it: the whole process group is SIGKILLed after the child
exits or times out (a grandchild holding our pipes would otherwise block us forever), and on
KeyboardInterrupt or any exception the group is killed and reaped before re-raising.
"""

from __future__ import annotations

import os
import resource
import select
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Optional

from teardown_audit.stacks import allow_ptrace_from, ptrace_needs_permission

if TYPE_CHECKING:
    from teardown_audit.watchdog import HangReport

# Output kept per stream: the head (where errors start) and the tail (where a faulthandler dump
# or the last traceback lands). Anything in between is dropped with a marker.
HEAD_BYTES = 2 * 1024 * 1024
TAIL_BYTES = 1 * 1024 * 1024
# After SIGABRT, faulthandler writes all threads' stacks and re-raises; it takes milliseconds,
# the bound only matters when the child ignores the signal.
PY_DUMP_TIMEOUT = 5.0
# SIGKILL is asynchronous: members of the group may take a moment to disappear.
GROUP_EXIT_TIMEOUT = 10.0
# Reader threads see EOF once every holder of the pipe is dead; a process that escaped the
# group (setsid) may keep it open, so we stop waiting after this and say so.
READER_JOIN_TIMEOUT = 5.0


@dataclass
class RunResult:
    argv: list[str]
    returncode: Optional[int]  # None when the harness killed it on timeout
    stdout: str
    stderr: str
    elapsed: float  # seconds
    timed_out: bool
    signal: Optional[str]  # "SIGSEGV" etc. when the child died by a signal (returncode < 0)
    hang: Optional[HangReport]  # set when timed_out (stacks captured before the kill)
    pid: Optional[int] = None  # the child's pid, which is also its process group id
    leftovers_killed: int = 0  # processes of the group still alive after the child exited
    notes: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        if self.timed_out:
            return "hang"
        if self.signal is not None:
            return f"killed by {self.signal}"
        return "ok" if self.returncode == 0 else f"exit {self.returncode}"


class _Drain:
    """Read one pipe to EOF in a thread, keeping head + tail; `mark()` starts a side copy."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._head = bytearray()
        self._tail = bytearray()
        self._dropped = 0
        self._marked: Optional[bytearray] = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"drain-fd{fd}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                chunk = os.read(self._fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            with self._lock:
                self._add(chunk)

    def _add(self, chunk: bytes) -> None:
        if self._marked is not None and len(self._marked) < TAIL_BYTES:
            self._marked += chunk[: TAIL_BYTES - len(self._marked)]
        room = HEAD_BYTES - len(self._head)
        if room > 0:
            self._head += chunk[:room]
            chunk = chunk[room:]
        self._tail += chunk
        if len(self._tail) > TAIL_BYTES:
            cut = len(self._tail) - TAIL_BYTES
            self._dropped += cut
            del self._tail[:cut]

    def mark(self) -> None:
        with self._lock:
            self._marked = bytearray()

    def join(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def marked_text(self) -> str:
        with self._lock:
            return bytes(self._marked or b"").decode("utf-8", "replace")

    def text(self) -> str:
        with self._lock:
            data = bytes(self._head)
            if self._dropped:
                data += f"\n[teardown-audit: {self._dropped} bytes of output omitted]\n".encode()
            data += bytes(self._tail)
        return data.decode("utf-8", "replace")


def is_python_argv(argv: Sequence[str]) -> bool:
    """True when argv[0] looks like a CPython interpreter (so PYTHONFAULTHANDLER applies)."""
    name = os.path.basename(argv[0]) if argv else ""
    return name.startswith("python") or (bool(argv) and argv[0] == sys.executable)


def _proc_stat_fields() -> Iterator[tuple[str, list[str]]]:
    """(pid, fields of /proc/PID/stat after the comm field) for every readable process."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode("ascii", "replace")
        except OSError:
            continue
        # The comm field may contain spaces and parentheses: split after the last ')'.
        yield entry, stat[stat.rfind(")") + 2 :].split()


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is pgid, from /proc."""
    members = []
    for entry, fields in _proc_stat_fields():
        if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry))
    return members


def group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    return not group_members(pgid)


def kill_group(pgid: int, timeout: float = GROUP_EXIT_TIMEOUT) -> bool:
    """SIGKILL the group and wait (bounded) until no live member is left; True when gone."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        if group_gone(pgid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def descendants(pid: int) -> list[int]:
    """All live descendants of pid (any process group), children before grandchildren."""
    children: dict[int, list[int]] = {}
    for entry, fields in _proc_stat_fields():
        if len(fields) > 1 and fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry))
    out: list[int] = []
    todo = list(children.get(pid, []))
    while todo:
        p = todo.pop(0)
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def _wait_exited(pid: int, timeout: float) -> bool:
    """Wait until pid has exited WITHOUT reaping it (so its pid, hence its pgid, stays reserved
    while we kill the rest of the group). True when it exited within timeout."""
    deadline = time.monotonic() + timeout
    pidfd = -1
    if hasattr(os, "pidfd_open"):
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            pidfd = -1
    try:
        delay = 0.001
        while True:
            info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            if info is not None:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if pidfd >= 0:
                # A pidfd becomes readable when the process exits: an exact wake-up.
                select.select([pidfd], [], [], left)
            else:
                time.sleep(min(delay, left))
                delay = min(delay * 2, 0.05)
    finally:
        if pidfd >= 0:
            os.close(pidfd)


def _signal_name(returncode: Optional[int]) -> Optional[str]:
    if returncode is None or returncode >= 0:
        return None
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def _feed_stdin(pipe_fd: int, data: bytes) -> None:
    try:
        view = memoryview(data)
        while view:
            n = os.write(pipe_fd, view)
            view = view[n:]
    except OSError:
        pass  # the child closed stdin or died: not our failure to report
    finally:
        os.close(pipe_fd)


def _no_core_dumps(pid: int, notes: list[str]) -> None:
    """core_pattern is often plain "core": a crashing (or SIGABRTed) child would litter its cwd.
    Set from outside right after spawn (no preexec_fn); a crash within the first instant of the
    exec can still dump core, which is acceptable."""
    try:
        resource.prlimit(pid, resource.RLIMIT_CORE, (0, 0))
    except (OSError, ValueError) as exc:
        notes.append(f"could not disable core dumps of pid {pid}: {exc}")


def _python_dump(pid: int, err: _Drain, notes: list[str]) -> None:
    """Ask a PYTHONFAULTHANDLER=1 child for all threads' Python stacks.

    faulthandler's SIGABRT handler is a C signal handler: it dumps every thread even while a
    thread holds the GIL inside C, then re-raises SIGABRT, which kills the child (no core: see
    _no_core_dumps). Verified on 3.9, 3.11 and 3.13.
    """
    err.mark()
    try:
        os.kill(pid, signal.SIGABRT)
    except ProcessLookupError:
        return
    if not _wait_exited(pid, PY_DUMP_TIMEOUT):
        notes.append(
            f"child ignored SIGABRT for {PY_DUMP_TIMEOUT:.0f}s (faulthandler not enabled?)"
        )


def run_bounded(
    argv: Sequence[str],
    *,
    timeout: float,
    env: Optional[Mapping[str, str]] = None,
    cwd: Optional[str] = None,
    stdin_text: Optional[str] = None,
    capture_stacks: bool = True,
) -> RunResult:
    """Run argv with a hard deadline in its own process group; never leaves a process behind."""
    argv = [str(a) for a in argv]
    child_env = dict(os.environ if env is None else env)
    python_child = is_python_argv(argv)
    if python_child:
        # Makes SIGABRT dump all threads' Python stacks, with no change to the child's script.
        child_env.setdefault("PYTHONFAULTHANDLER", "1")
    preexec: Optional[Callable[[], None]] = None
    if capture_stacks and ptrace_needs_permission():
        # Yama ptrace_scope=1: our stack tool is a sibling of the child, not its ancestor, so
        # the child must name us as its tracer (descendants of the tracer are allowed too).
        me = os.getpid()

        def preexec() -> None:
            allow_ptrace_from(me)

    start = time.monotonic()
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_env,
        cwd=cwd,
        start_new_session=True,  # own session + process group: killpg reaches grandchildren
        preexec_fn=preexec,
    )
    pgid = proc.pid
    notes: list[str] = []
    hang: Optional[HangReport] = None
    timed_out = False
    leftovers = 0
    drains: list[_Drain] = []
    assert proc.stdout is not None and proc.stderr is not None
    try:
        _no_core_dumps(proc.pid, notes)
        out, err = _Drain(proc.stdout.fileno()), _Drain(proc.stderr.fileno())
        drains = [out, err]
        if stdin_text is not None:
            assert proc.stdin is not None
            fd = os.dup(proc.stdin.fileno())
            proc.stdin.close()
            threading.Thread(
                target=_feed_stdin, args=(fd, stdin_text.encode()), name="feed-stdin", daemon=True
            ).start()
        if not _wait_exited(proc.pid, timeout):
            timed_out = True
            if capture_stacks:
                from teardown_audit.watchdog import capture_hang

                hang = capture_hang(proc.pid)  # while it is still stuck, before any signal
                if python_child:
                    _python_dump(proc.pid, err, notes)
        else:
            leftovers = len(group_members(pgid))
        if not kill_group(pgid):
            notes.append(f"process group {pgid} still has members {group_members(pgid)}")
        proc.wait(timeout=GROUP_EXIT_TIMEOUT)
    except BaseException:
        kill_group(pgid)
        try:
            proc.wait(timeout=GROUP_EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
        raise
    finally:
        for drain in drains:
            if not drain.join(READER_JOIN_TIMEOUT):
                notes.append("an output pipe is still held open by a process outside the group")
        proc.stdout.close()
        proc.stderr.close()
    elapsed = time.monotonic() - start
    if hang is not None and python_child:
        hang.python_stacks = err.marked_text()
        if not hang.python_stacks:
            hang.notes.append("python stacks: the child wrote nothing after SIGABRT")
    elif hang is not None:
        hang.notes.append("python stacks: not a Python child (no PYTHONFAULTHANDLER)")
    if hang is not None:
        hang.notes.extend(notes)
    returncode = None if timed_out else proc.returncode
    return RunResult(
        argv=argv,
        returncode=returncode,
        stdout=out.text(),
        stderr=err.text(),
        elapsed=elapsed,
        timed_out=timed_out,
        signal=_signal_name(returncode),
        hang=hang,
        pid=pgid,
        leftovers_killed=leftovers,
        notes=notes,
    )


def reproduce_command(argv: Sequence[str], env_delta: Optional[Mapping[str, str]] = None) -> str:
    """A shell command a user can paste: `env` prefix only for variables that differ."""
    changed = {k: v for k, v in sorted((env_delta or {}).items()) if os.environ.get(k) != v}
    words = [f"{k}={shlex.quote(v)}" for k, v in changed.items()]
    prefix = ["env", *words] if words else []
    return " ".join(prefix + [shlex.quote(str(a)) for a in argv])
