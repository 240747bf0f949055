"""The probe's native watchdog, seen from the harness: trigger it, read its report.

A process with the probe preloaded answers the dedicated signal (SIGRTMAX-2 unless
TEARDOWN_PROBE_SIGNAL says otherwise) by having every thread write its own backtrace to the
report file — no ptrace, so it works where Yama or a container forbids attaching. The deadline
form needs no harness at all: TEARDOWN_PROBE_WATCHDOG=SECONDS in the child's environment.
"""

from __future__ import annotations

import os
import re
import signal
import time
from dataclasses import dataclass, field

END_MARKER = "=== end of report:"
DEFAULT_SIGNAL = signal.SIGRTMAX - 2
# How long a report may take: each thread answers within milliseconds; the probe itself gives
# up on a thread after 0.5 s, so this bound is only reached if the process died mid-report.
REPORT_BOUND = 30.0


def report_path(pid: int) -> str:
    return f"/tmp/teardown-probe-{pid}.txt"


def watchdog_env(seconds: float, path: str) -> dict[str, str]:
    """Environment for a child: dump every thread's native stack to `path` after `seconds`."""
    return {"TEARDOWN_PROBE_WATCHDOG": f"{seconds:g}", "TEARDOWN_PROBE_REPORT": path}


@dataclass
class ThreadStack:
    tid: int
    name: str
    lineage: str
    frames: list[str] = field(default_factory=list)


@dataclass
class NativeReport:
    header: str
    threads: list[ThreadStack]
    footer: str
    missing: list[str]  # "no answer" lines

    @property
    def complete(self) -> bool:
        return self.footer != "" and not self.missing


_THREAD = re.compile(r"^--- thread (\d+) '(.*)' lineage (.*)$")


def parse_report(text: str) -> NativeReport:
    lines = text.splitlines()
    threads: list[ThreadStack] = []
    current: ThreadStack | None = None
    missing, footer = [], ""
    for line in lines[1:]:
        m = _THREAD.match(line)
        if m:
            current = ThreadStack(int(m.group(1)), m.group(2), m.group(3))
            threads.append(current)
        elif line.startswith("--- end thread"):
            current = None
        elif line.startswith("--- thread ") and "no answer" in line:
            missing.append(line)
        elif line.startswith(END_MARKER):
            footer = line
        elif current is not None:
            current.frames.append(line)
    return NativeReport(lines[0] if lines else "", threads, footer, missing)


def read_report(path: str, bound: float = REPORT_BOUND) -> NativeReport | None:
    """Wait (bounded) for a complete report at `path`; None if none appeared."""
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            text = ""
        if END_MARKER in text:
            return parse_report(text)
        time.sleep(0.02)
    return None


def trigger(
    pid: int, path: str | None = None, sig: int = DEFAULT_SIGNAL, bound: float = REPORT_BOUND
) -> NativeReport | None:
    """Ask a probed process for every thread's native stack; the report's path defaults to the
    probe's /tmp/teardown-probe-<pid>.txt."""
    path = path or report_path(pid)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    os.kill(pid, sig)
    return read_report(path, bound)
