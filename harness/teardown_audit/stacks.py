"""Native stacks of every thread of a live process: eu-stack, else gdb, else pystack.

eu-stack (elfutils) takes ~0.02-0.1 s and prints function + module per frame; gdb takes ~0.6 s
and adds file:line; pystack (PyPI) is tried last because it is rarely installed. Every tool is a
ptrace attach, so Yama's ptrace_scope matters; the helpers for that live here too.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

# Attaching to a process with many threads and resolving symbols: generous bounds, since a
# stuck tool must not turn one hang into two.
EU_STACK_TIMEOUT = 20.0
GDB_TIMEOUT = 60.0
PYSTACK_TIMEOUT = 60.0
YAMA_PATH = "/proc/sys/kernel/yama/ptrace_scope"
PR_SET_PTRACER = 0x59616D61  # "Yama" in ASCII, from <linux/prctl.h>
CAP_SYS_PTRACE = 19
# Tools must never wait on the network for debug info (debuginfod).
TOOL_ENV = {"DEBUGINFOD_URLS": "", "LC_ALL": "C"}


@dataclass(frozen=True)
class Frame:
    function: str  # "??" when unknown; symbol version suffixes (@@GLIBC_2.3.2) removed
    module: str = ""  # shared object path when the tool says it, else ""


@dataclass
class NativeStacks:
    tool: str  # "eu-stack" | "gdb" | "pystack" | "none: <reason>"
    text: str  # the tool's raw output, kept as evidence
    frames: dict[int, list[Frame]] = field(default_factory=dict)  # tid -> innermost first
    elapsed: float = 0.0
    gil_labels: dict[int, str] = field(default_factory=dict)  # pystack's own GIL verdict per tid


def ptrace_scope() -> Optional[int]:
    """Yama's ptrace_scope, or None when Yama is absent (then classic same-uid rules apply)."""
    try:
        with open(YAMA_PATH) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def _has_cap_sys_ptrace() -> bool:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> CAP_SYS_PTRACE & 1)
    except (OSError, ValueError):
        pass
    return False


def ptrace_needs_permission() -> bool:
    """True when a non-ancestor tracer needs PR_SET_PTRACER from the tracee (scope 1)."""
    scope = ptrace_scope()
    return scope is not None and scope >= 1 and not _has_cap_sys_ptrace()


def allow_ptrace_from(tracer_pid: int) -> bool:
    """prctl(PR_SET_PTRACER, tracer_pid) for the calling process; descendants of the tracer are
    allowed too (that is how an eu-stack spawned by the watcher gets in). Scope 2 and 3 cannot
    be relaxed this way: then only CAP_SYS_PTRACE helps, and the stacks say "none: ..."."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PTRACER, ctypes.c_ulong(tracer_pid), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _clean(name: str) -> str:
    return name.split("@", 1)[0] if name else "??"


_EU_TID = re.compile(r"^TID (\d+):")
_EU_FRAME = re.compile(r"^#\d+\s+0x[0-9a-f]+\s+(\S+)?(?:\s+-\s+(\S+))?")


def parse_eu_stack(text: str) -> dict[int, list[Frame]]:
    frames: dict[int, list[Frame]] = {}
    current: Optional[list[Frame]] = None
    for line in text.splitlines():
        m = _EU_TID.match(line)
        if m:
            current = frames.setdefault(int(m.group(1)), [])
            continue
        m = _EU_FRAME.match(line)
        if m and current is not None:
            current.append(Frame(_clean(m.group(1) or "??"), m.group(2) or ""))
    return frames


_GDB_THREAD = re.compile(r"^Thread \d+ \(.*?LWP (\d+)\)")
_GDB_FRAME = re.compile(r"^#\d+\s+(?:0x[0-9a-f]+ in )?(\S+) \(.*?\)(?: (?:at \S+|from (\S+)))?")


def parse_gdb(text: str) -> dict[int, list[Frame]]:
    frames: dict[int, list[Frame]] = {}
    current: Optional[list[Frame]] = None
    for line in text.splitlines():
        m = _GDB_THREAD.match(line)
        if m:
            current = frames.setdefault(int(m.group(1)), [])
            continue
        m = _GDB_FRAME.match(line)
        if m and current is not None:
            current.append(Frame(_clean(m.group(1)), m.group(2) or ""))
    return frames


_PYSTACK_THREAD = re.compile(r"^Traceback for thread (\d+)(?: \(([^)]*)\))?(?: \[([^\]]*)\])?")
_PYSTACK_NATIVE = re.compile(
    r'^\s*\(C\) File ".*", line \d+, in (\S+)(?: \(inlined\))?(?: \((.*)\))?$'
)


def parse_pystack(text: str) -> tuple[dict[int, list[Frame]], dict[int, str]]:
    """pystack prints most recent call LAST and tags threads "[Has the GIL]" etc."""
    frames: dict[int, list[Frame]] = {}
    labels: dict[int, str] = {}
    current: Optional[list[Frame]] = None
    for line in text.splitlines():
        m = _PYSTACK_THREAD.match(line)
        if m:
            tid = int(m.group(1))
            current = frames.setdefault(tid, [])
            if m.group(3):
                labels[tid] = m.group(3)
            continue
        m = _PYSTACK_NATIVE.match(line)
        if m and current is not None:
            current.insert(0, Frame(_clean(m.group(1)), m.group(2) or ""))
    return frames, labels


def _tool_argv(tool: str, pid: int) -> list[str]:
    if tool == "eu-stack":
        return ["eu-stack", "-p", str(pid), "-m"]
    if tool == "gdb":
        return [
            "gdb", "-p", str(pid), "-batch", "-nx",
            "-iex", "set debuginfod enabled off",
            "-ex", "set pagination off", "-ex", "thread apply all bt",
        ]  # fmt: skip
    return ["pystack", "remote", str(pid), "--native-all", "--no-color"]


_TIMEOUTS = {"eu-stack": EU_STACK_TIMEOUT, "gdb": GDB_TIMEOUT, "pystack": PYSTACK_TIMEOUT}


def capture_native(
    pid: int, tools: tuple[str, ...] = ("eu-stack", "gdb", "pystack")
) -> NativeStacks:
    """First tool that yields at least one thread wins; otherwise "none: <why each failed>"."""
    from teardown_audit.proc import run_bounded

    env = {**os.environ, **TOOL_ENV}
    failures: list[str] = []
    for tool in tools:
        if shutil.which(tool) is None:
            failures.append(f"{tool} not installed")
            continue
        start = time.monotonic()
        res = run_bounded(
            _tool_argv(tool, pid), timeout=_TIMEOUTS[tool], env=env, capture_stacks=False
        )
        elapsed = time.monotonic() - start
        labels: dict[int, str] = {}
        parse: Callable[[str], dict[int, list[Frame]]]
        if tool == "pystack":
            frames, labels = parse_pystack(res.stdout)
        else:
            parse = parse_eu_stack if tool == "eu-stack" else parse_gdb
            frames = parse(res.stdout)
        if any(frames.values()):
            text = res.stdout if not res.stderr.strip() else f"{res.stdout}\n{res.stderr}"
            return NativeStacks(tool, text, frames, elapsed, labels)
        why = "timed out" if res.timed_out else f"exit {res.returncode}"
        detail = res.stderr.strip().splitlines()[-1:] or [""]
        failures.append(f"{tool} {why}: {detail[0][:200]}")
    return NativeStacks("none: " + "; ".join(failures), "")
