"""Cheap in-process probes: native threads from /proc/self/task, classified fds from /proc/self/fd.

Both read the kernel's view, so they see threads and fds that Python never registered (a native
extension's pool, its eventfds, its asyncio loop's epoll). Linux only.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field

TASK_DIR = "/proc/self/task"
FD_DIR = "/proc/self/fd"

# PF_EXITING (include/linux/sched.h): set at the start of do_exit. A thread that was just joined
# with pthread_join may still be listed for a moment; this flag says it has already left user
# space for good, so it is not counted as alive.
PF_EXITING = 0x4


@dataclass(frozen=True)
class ThreadInfo:
    """One native thread of this process as the kernel reports it."""

    tid: int
    name: str
    state: str  # R running, S sleeping, D disk wait, Z zombie, ...
    exiting: bool

    def describe(self) -> str:
        return f"tid {self.tid} '{self.name}' ({self.state})"


def list_threads() -> list[ThreadInfo]:
    """All tasks in /proc/self/task, including ones already on their way out (see `exiting`)."""
    threads = []
    for entry in os.listdir(TASK_DIR):
        info = _read_task(int(entry))
        if info is not None:
            threads.append(info)
    return sorted(threads, key=lambda t: t.tid)


def live_threads() -> list[ThreadInfo]:
    """Threads that can still run code: exiting, zombie and dead tasks are left out."""
    return [t for t in list_threads() if not t.exiting and t.state not in ("Z", "X", "x")]


def thread_count() -> int:
    return len(live_threads())


def wait_thread_gone(tid: int, timeout: float = 2.0) -> bool:
    """Thread.join() returns while the OS thread is still finishing (Python threads are detached
    pthreads); wait until the task is gone or exiting, so the harness's own helper threads never
    count as growth. True when gone within the safety bound."""
    deadline = time.monotonic() + timeout
    while True:
        info = _read_task(tid)
        if info is None or info.exiting or info.state in ("Z", "X", "x"):
            return True
        if time.monotonic() >= deadline:
            return False
        os.sched_yield()


def _read_task(tid: int) -> ThreadInfo | None:
    try:
        with open(f"{TASK_DIR}/{tid}/stat") as f:
            stat = f.read()
    except OSError:  # the thread finished between listdir and open
        return None
    # The name (comm) is in parentheses and may itself contain spaces or ')'.
    open_paren, close_paren = stat.index("("), stat.rindex(")")
    name = stat[open_paren + 1 : close_paren]
    fields = stat[close_paren + 2 :].split()
    state, flags = fields[0], int(fields[6])
    return ThreadInfo(tid=tid, name=name, state=state, exiting=bool(flags & PF_EXITING))


# ---------------------------------------------------------------------------------------------
# File descriptors

FD_KINDS = ("eventpoll", "socket", "pipe", "eventfd", "file", "other")


@dataclass(frozen=True)
class FdInfo:
    fd: int
    kind: str  # one of FD_KINDS
    target: str  # the readlink text, e.g. "socket:[1234]" or "/tmp/x.log"


def classify_fd_target(target: str) -> str:
    """Map a /proc/self/fd link text to one of FD_KINDS."""
    if target == "anon_inode:[eventpoll]":
        return "eventpoll"
    if target.startswith("socket:"):
        return "socket"
    if target.startswith("pipe:"):
        return "pipe"
    if target.startswith("anon_inode:[eventfd") or target == "anon_inode:eventfd":
        return "eventfd"
    if target.startswith("/"):
        return "file"
    return "other"


@dataclass(frozen=True)
class FdSnapshot:
    fds: tuple[FdInfo, ...]

    def counts(self) -> Counter[str]:
        return Counter(f.kind for f in self.fds)

    def __len__(self) -> int:
        return len(self.fds)


def fd_snapshot() -> FdSnapshot:
    """Every open fd of this process with its kind."""
    found = []
    for entry in os.listdir(FD_DIR):
        fd = int(entry)
        try:
            target = os.readlink(f"{FD_DIR}/{fd}")
        except OSError:  # the directory fd listdir itself used, already closed
            continue
        found.append(FdInfo(fd=fd, kind=classify_fd_target(target), target=target))
    return FdSnapshot(tuple(sorted(found, key=lambda f: f.fd)))


@dataclass(frozen=True)
class FdDiff:
    """What changed between two snapshots, by kind. `cycles` turns totals into per-cycle rates."""

    opened: tuple[FdInfo, ...]
    closed: tuple[FdInfo, ...]
    cycles: int = 1
    by_kind: dict[str, int] = field(default_factory=dict)  # net change per kind

    @property
    def net(self) -> int:
        return len(self.opened) - len(self.closed)

    def summary(self) -> str:
        """E.g. '+3 fds per cycle: 1 eventpoll, 2 socket — an asyncio loop not closed'."""
        return summarize_growth(self.by_kind, self.cycles, self.opened)


def fd_diff(before: FdSnapshot, after: FdSnapshot, cycles: int = 1) -> FdDiff:
    # An fd number plus its link text identifies "the same open file" well enough for a diff.
    old = {(f.fd, f.target): f for f in before.fds}
    new = {(f.fd, f.target): f for f in after.fds}
    opened = tuple(new[k] for k in sorted(new.keys() - old.keys()))
    closed = tuple(old[k] for k in sorted(old.keys() - new.keys()))
    by_kind = dict(after.counts())
    for kind, n in before.counts().items():
        by_kind[kind] = by_kind.get(kind, 0) - n
    by_kind = {k: v for k, v in by_kind.items() if v}
    return FdDiff(opened=opened, closed=closed, cycles=cycles, by_kind=by_kind)


def summarize_growth(by_kind: dict[str, int], cycles: int, opened: tuple[FdInfo, ...] = ()) -> str:
    """One line: the net change (per cycle when it divides evenly) and what it most likely is."""
    net = sum(by_kind.values())
    if not by_kind:
        return "no fd change"
    per_cycle = cycles > 1 and all(v % cycles == 0 for v in by_kind.values())
    divisor = cycles if per_cycle else 1
    parts = ", ".join(
        f"{v // divisor} {k}"
        for k, v in sorted(by_kind.items(), key=lambda kv: FD_KINDS.index(kv[0]))
    )
    rate = " per cycle" if per_cycle else f" over {cycles} cycles" if cycles > 1 else ""
    line = f"{net // divisor:+d} fds{rate}: {parts}"
    cause = _likely_cause({k: v // divisor for k, v in by_kind.items()}, opened)
    return f"{line} — {cause}" if cause else line


def _likely_cause(per_cycle: dict[str, int], opened: tuple[FdInfo, ...]) -> str:
    """Name the usual culprit. asyncio's new_event_loop() opens exactly 1 epoll + 2 sockets."""
    causes = []
    loops = min(per_cycle.get("eventpoll", 0), per_cycle.get("socket", 0) // 2)
    if loops > 0:
        causes.append(
            "an asyncio loop not closed" if loops == 1 else f"{loops} asyncio loops not closed"
        )
    if per_cycle.get("eventfd", 0) > 0:
        causes.append("an eventfd (worker wake-up) not closed")
    if per_cycle.get("pipe", 0) > 0:
        causes.append("a pipe not closed")
    if per_cycle.get("file", 0) > 0:
        paths = sorted({f.target for f in opened if f.kind == "file"})
        causes.append("files left open: " + ", ".join(paths[:3]) if paths else "files left open")
    if per_cycle and all(v < 0 for v in per_cycle.values()):
        causes.append("fds closed, none leaked")
    return "; ".join(causes)
