"""One-line deadlock diagnosis from native stacks and /proc/PID/task/*/{comm,stat,syscall,wchan}.

Heuristics (each is evidence, never a guess presented as fact; when none applies the line says
"no deadlock pattern found"):

* **Waiting for the GIL**: a GIL-acquire frame (take_gil, PyEval_RestoreThread,
  _PyThreadState_Attach, PyGILState_Ensure, PyEval_AcquireThread) within the innermost frames,
  with no eval-loop or C-API call frame above it. Such a thread futex-waits on a condvar inside
  libpython's data (the GIL) with a timeout: it wakes every 5 ms to ask for a switch, so it may be
  caught outside the wait, which is why the frame may sit below clock_gettime or a mutex.
* **Joining**: a pthread_join frame (__pthread_clockjoin_ex in glibc >= 2.34) near the top. glibc
  waits on the joined thread's `tid` word with the tid itself as the expected value, so the third
  futex argument in /proc/.../syscall *is the joined thread's tid* (verified on glibc 2.36).
* **Waiting for a mutex**: pthread_mutex_lock / __lll_lock_wait near the top; the first futex
  argument is the mutex, and glibc keeps the owner's tid at offset 8 (`__data.__owner`), which we
  read from /proc/PID/mem (needs the same ptrace permission as the stack tool).
* **Who holds the GIL** (the GIL's owner is not recorded anywhere we can read portably): pystack's
  own verdict when pystack was the tool; otherwise the one thread that (a) is not waiting for the
  GIL, (b) has interpreter frames (it runs Python or was called from it), and (c) is not stopped
  inside a CPython function known to release the GIL first (time.sleep, Lock.acquire, os.read,
  select, Thread.join, the faulthandler watchdog...). A blocking call such as pthread_join reached
  from a C-extension function called by Python, with no such frame, is held to keep the GIL: the
  Py_BEGIN_ALLOW_THREADS that would release it leaves no frame behind, which is why the candidate
  must be unique (or the only candidate joining a GIL waiter) to be named.

These edges (join -> joined tid, mutex -> owner, GIL waiter -> holder) form a wait-for graph in
which each thread has at most one outgoing edge; a cycle is a deadlock and is named edge by edge.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from typing import Any, Optional

from teardown_audit.stacks import Frame, NativeStacks

GIL_ACQUIRE = frozenset(
    {
        "take_gil",
        "PyEval_RestoreThread",
        "_PyThreadState_Attach",
        "PyGILState_Ensure",
        "PyEval_AcquireThread",
        "PyEval_AcquireLock",
        "_PyEval_AcquireLock",
    }
)
JOIN = frozenset(
    {"pthread_join", "__pthread_join", "__pthread_clockjoin_ex", "pthread_timedjoin_np",
     "pthread_clockjoin_np"}
)  # fmt: skip
MUTEX = frozenset(
    {"pthread_mutex_lock", "__pthread_mutex_lock", "__GI___pthread_mutex_lock", "__lll_lock_wait",
     "__GI___lll_lock_wait", "pthread_mutex_timedlock", "__pthread_mutex_lock_full",
     "lll_mutex_lock_optimized"}
)  # fmt: skip
# CPython frames that release the GIL before they block (Py_BEGIN_ALLOW_THREADS inside).
RELEASES_GIL = frozenset(
    {"time_sleep", "pysleep", "lock_PyThread_acquire_lock", "rlock_acquire", "acquire_timed",
     "PyThread_acquire_lock_timed", "_Py_read", "_Py_write", "os_read_impl", "os_write_impl",
     "os_waitpid_impl", "os_wait_impl", "os_system_impl", "select_select_impl",
     "select_poll_poll_impl", "select_epoll_poll_impl", "sock_call_ex", "faulthandler_thread",
     "PyThread_join_thread", "PyEvent_WaitTimed", "_PyEvent_WaitTimed", "PyEval_SaveThread"}
)  # fmt: skip
# Libc-internal wait plumbing, skipped to find the frame that decided to wait.
_WAIT_PREFIXES = ("__futex", "futex_", "__lll_", "___pthread_cond", "__pthread_cond",
                  "pthread_cond_", "PyCOND_", "PyMUTEX_", "__GI_", "do_futex_wait",
                  "__new_sem_wait", "sem_wait", "sem_timedwait", "syscall")  # fmt: skip
_LIBC_MODULES = ("libc.so", "libpthread", "ld-linux")
_LIBC_NAMES = frozenset(
    {"pause", "nanosleep", "clock_nanosleep", "read", "write", "poll", "ppoll", "select",
     "epoll_wait", "__libc_read", "start_thread", "clone", "clone3", "__clone3"}
)  # fmt: skip
_INTERP_PREFIXES = ("Py", "_Py", "pymain", "cfunction_", "method_vectorcall", "slot_tp",
                    "subtype_dealloc", "thread_run", "t_bootstrap", "run_mod")  # fmt: skip
# Frames that mean "this thread is executing Python or calling into the C API".
_RUNS_CODE = ("_PyEval_EvalFrame", "PyEval_EvalCode", "PyObject_Call", "PyObject_Vectorcall",
              "_PyObject_Call", "_PyObject_MakeTpCall", "cfunction_")  # fmt: skip
_API = {"__pthread_clockjoin_ex": "pthread_join", "__pthread_join": "pthread_join",
        "__pthread_mutex_lock": "pthread_mutex_lock", "__lll_lock_wait": "pthread_mutex_lock",
        "__GI___lll_lock_wait": "pthread_mutex_lock",
        "___pthread_cond_timedwait64": "pthread_cond_timedwait"}  # fmt: skip
FRAMES_CONSIDERED = 8  # how deep from the innermost frame a wait is recognised
_SYSCALLS = {
    "x86_64": {0: "read", 1: "write", 7: "poll", 23: "select", 34: "pause", 35: "nanosleep",
               61: "wait4", 202: "futex", 230: "clock_nanosleep", 232: "epoll_wait",
               247: "waitid", 270: "pselect6", 271: "ppoll", 281: "epoll_pwait"},
    "aarch64": {63: "read", 64: "write", 73: "ppoll", 98: "futex", 101: "nanosleep",
                115: "clock_nanosleep", 260: "wait4", 22: "epoll_pwait"},
}  # fmt: skip
_FUTEX_OPS = {0: "FUTEX_WAIT", 6: "FUTEX_LOCK_PI", 9: "FUTEX_WAIT_BITSET", 1: "FUTEX_WAKE"}


@dataclass
class ThreadState:
    tid: int
    name: str = "?"
    state: str = "?"  # R running, S sleeping, D disk, t traced, Z zombie
    syscall: Optional[int] = None  # None: running or unknown
    args: list[int] = field(default_factory=list)
    wchan: str = ""
    frames: list[Frame] = field(default_factory=list)
    waits_for_gil: bool = False
    gil_frame: str = ""
    joins: Optional[int] = None  # tid being joined (from the futex value)
    joining: bool = False
    mutex: Optional[int] = None
    mutex_owner: Optional[int] = None
    releases_gil: bool = False
    has_interp: bool = False
    holds_gil: bool = False
    role: str = ""

    def syscall_name(self) -> str:
        if self.syscall is None:
            return "running" if self.state == "R" else "no syscall"
        table = _SYSCALLS.get(platform.machine(), {})
        return table.get(self.syscall, f"syscall {self.syscall}")

    def syscall_summary(self) -> str:
        name = self.syscall_name()
        if name == "futex" and len(self.args) >= 3:
            op = _FUTEX_OPS.get(self.args[1] & 0x7F, hex(self.args[1]))
            return f"futex({self.args[0]:#x}, {op}, val={self.args[2]})"
        return name

    def label(self, pid: int) -> str:
        main = ", main thread" if self.tid == pid else ""
        return f"tid {self.tid} ({self.name}{main})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "tid": self.tid,
            "name": self.name,
            "state": self.state,
            "syscall": self.syscall_summary(),
            "wchan": self.wchan,
            "role": self.role,
            "blocked_in": blocked_in(self.frames),
            "frames": [f.function for f in self.frames[:FRAMES_CONSIDERED]],
        }


def _read(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""


def sample_threads(pid: int) -> dict[int, ThreadState]:
    """One snapshot of every task's comm, state, syscall and wchan (no ptrace needed)."""
    out: dict[int, ThreadState] = {}
    try:
        tids = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return out
    for tid in tids:
        base = f"/proc/{pid}/task/{tid}"
        stat = _read(f"{base}/stat")
        t = ThreadState(tid, name=_read(f"{base}/comm") or "?", wchan=_read(f"{base}/wchan"))
        if ")" in stat:
            t.state = stat[stat.rfind(")") + 2 :].split()[0]
        words = _read(f"{base}/syscall").split()
        if words and words[0].lstrip("-").isdigit() and int(words[0]) >= 0:
            t.syscall = int(words[0])
            t.args = [int(w, 16) for w in words[1:7]]
        out[tid] = t
    return out


def merge_samples(*samples: dict[int, ThreadState]) -> dict[int, ThreadState]:
    """Prefer, per tid, a sample taken while blocked in a syscall (a GIL waiter wakes every 5 ms,
    so any single read may catch it between two futex waits)."""
    merged: dict[int, ThreadState] = {}
    for sample in samples:
        for tid, t in sample.items():
            if tid not in merged or (merged[tid].syscall is None and t.syscall is not None):
                merged[tid] = t
    return merged


def _is_libc(f: Frame) -> bool:
    if f.module:
        return any(m in f.module for m in _LIBC_MODULES)
    return f.function in _LIBC_NAMES or f.function.startswith(("__", "pthread_"))


def _is_wait_plumbing(f: Frame) -> bool:
    return f.function.startswith(_WAIT_PREFIXES) or f.function in JOIN or f.function in MUTEX


def _first_real(frames: list[Frame]) -> int:
    """Index of the first frame outside libc's wait plumbing (innermost end)."""
    for i, f in enumerate(frames[:FRAMES_CONSIDERED]):
        if not _is_wait_plumbing(f) and not _is_libc(f):
            return i
    return 0


def blocked_in(frames: list[Frame]) -> str:
    """'pthread_join() in join_holding_gil' style: the libc API and the code that called it."""
    if not frames:
        return "?"
    i = _first_real(frames)
    caller = frames[i].function
    if i == 0:
        return caller
    api = frames[i - 1].function
    return f"{_API.get(api, api.lstrip('_'))}() in {caller}"


def _read_int(pid: int, addr: int) -> Optional[int]:
    try:
        with open(f"/proc/{pid}/mem", "rb") as f:
            f.seek(addr)
            data = f.read(4)
    except (OSError, OverflowError, ValueError):
        return None
    return int.from_bytes(data, "little", signed=True) if len(data) == 4 else None


def _gil_wait(frames: list[Frame]) -> tuple[bool, str]:
    """(waiting for the GIL?, outermost GIL-acquire frame). A waiter wakes every 5 ms to re-check
    and request a switch, so a snapshot may catch it in clock_gettime or a mutex inside take_gil
    rather than in the condvar wait: any GIL-acquire frame near the top counts, unless the thread
    runs code (an eval loop or a C-API call) on top of it, i.e. it already got the GIL."""
    top = frames[:FRAMES_CONSIDERED]
    hits = [i for i, f in enumerate(top) if f.function in GIL_ACQUIRE]
    if not hits:
        return False, ""
    above = [f.function for f in top[: hits[0]]]
    if any(n.startswith(_RUNS_CODE) for n in above):
        return False, ""
    outer = hits[0]
    while outer + 1 < len(top) and top[outer + 1].function in GIL_ACQUIRE:
        outer += 1
    return True, top[outer].function


def classify(pid: int, threads: dict[int, ThreadState], native: NativeStacks) -> None:
    """Fill the derived fields of each ThreadState in place (see the module docstring)."""
    for tid, t in threads.items():
        t.frames = native.frames.get(tid, [])
        top = t.frames[:FRAMES_CONSIDERED]
        names = [f.function for f in top]
        real = _first_real(t.frames) if t.frames else 0
        t.waits_for_gil, t.gil_frame = _gil_wait(t.frames)
        futex = t.syscall_name() == "futex" and len(t.args) >= 3
        t.joining = any(n in JOIN for n in names)
        if t.joining and futex and t.args[2] in threads and t.args[2] != tid:
            t.joins = t.args[2]
        if any(n in MUTEX for n in names) and futex:
            t.mutex = t.args[0]
            is_pi = t.args[1] & 0x7F == 6  # PI futex word holds the owner's tid itself
            word = _read_int(pid, t.mutex if is_pi else t.mutex + 8)
            owner = (word & 0x3FFFFFFF) if (word is not None and is_pi) else word
            if owner in threads and owner != tid:
                t.mutex_owner = owner
        t.has_interp = any(
            f.function.startswith(_INTERP_PREFIXES) or "libpython" in f.module for f in t.frames
        )
        following = [f.function for f in t.frames[real : real + 4]]
        t.releases_gil = any(n in RELEASES_GIL for n in following)
    _infer_gil_holder(threads, native)
    for t in threads.values():
        t.role = _role(pid, t)


def _infer_gil_holder(threads: dict[int, ThreadState], native: NativeStacks) -> None:
    for tid, label in native.gil_labels.items():
        if tid in threads and "Has the GIL" in label:
            threads[tid].holds_gil = True
            return
    waiters = {t.tid for t in threads.values() if t.waits_for_gil}
    if not waiters:
        return  # nobody is stuck on the GIL: who holds it does not matter to a diagnosis
    cands = [
        t for t in threads.values() if not t.waits_for_gil and t.has_interp and not t.releases_gil
    ]
    if len(cands) > 1:
        cands = [t for t in cands if t.joins in waiters]
    if len(cands) == 1:
        cands[0].holds_gil = True


def _role(pid: int, t: ThreadState) -> str:
    roles = ["main"] if t.tid == pid else []
    names = {f.function for f in t.frames}
    if t.waits_for_gil:
        roles.append("waiting for the GIL")
    if t.holds_gil:
        roles.append("holds the GIL (inferred)")
    if t.joins is not None or t.joining:
        roles.append(f"joining tid {t.joins}" if t.joins else "joining")
    if t.mutex is not None:
        roles.append(f"waiting for mutex {t.mutex:#x}")
    if "faulthandler_thread" in names:
        roles.append("faulthandler watchdog")
    elif names & {"thread_run", "t_bootstrap", "pythread_wrapper"}:
        roles.append("Python thread")
    elif t.tid != pid and not t.has_interp:
        roles.append("native thread")
    elif t.tid != pid and "start_thread" in names and "thread_run" not in names:
        roles.append("native thread attached to Python")
    return ", ".join(roles) or "?"


def _edge(t: ThreadState, holder: Optional[ThreadState]) -> Optional[tuple[int, str]]:
    if t.joins is not None:
        return t.joins, "join"
    if t.mutex_owner is not None:
        return t.mutex_owner, "mutex"
    if t.waits_for_gil and holder is not None and holder.tid != t.tid:
        return holder.tid, "gil"
    return None


def _find_cycle(threads: dict[int, ThreadState], holder: Optional[ThreadState]) -> list[int]:
    edges = {tid: e[0] for tid, t in threads.items() if (e := _edge(t, holder)) is not None}
    for start in sorted(edges):
        seen: list[int] = []
        node: Optional[int] = start
        while node is not None and node not in seen:
            seen.append(node)
            node = edges.get(node)
        if node is not None:
            return seen[seen.index(node) :]
    return []


def _phrase(pid: int, t: ThreadState, threads: dict[int, ThreadState], first: set[int]) -> str:
    def name(tid: int) -> str:
        if tid in first:
            return f"tid {tid}"
        first.add(tid)
        return threads[tid].label(pid)

    holder = next((x for x in threads.values() if x.holds_gil), None)
    me = name(t.tid)
    target, kind = _edge(t, holder) or (0, "")
    if kind == "join":
        gil = " while holding the GIL" if t.holds_gil else ""
        return f"{me} is joining {name(target)}{gil}"
    if kind == "mutex":
        return f"{me} waits for mutex {t.mutex:#x} held by {name(target)}"
    return f"{me} is waiting for the GIL ({t.gil_frame}) held by {name(target)}"


def diagnose(pid: int, threads: dict[int, ThreadState], native: NativeStacks) -> str:
    """The one-line verdict; `threads` must already be classified."""
    holder = next((t for t in threads.values() if t.holds_gil), None)
    waiters = [t for t in threads.values() if t.waits_for_gil]
    cycle = _find_cycle(threads, holder)
    first: set[int] = set()
    if cycle:
        # Start the story at the GIL holder (or the main thread) so it reads cause -> effect.
        lead = next((i for i, tid in enumerate(cycle) if threads[tid].holds_gil), None)
        if lead is None:
            lead = cycle.index(pid) if pid in cycle else 0
        cycle = cycle[lead:] + cycle[:lead]
        parts = [_phrase(pid, threads[tid], threads, first) for tid in cycle]
        involves_gil = any(threads[tid].waits_for_gil for tid in cycle)
        line = "; ".join(parts)
        if not involves_gil:
            line = "lock-order deadlock without the GIL: " + line
            outside = [
                _phrase(pid, t, threads, first)
                for t in threads.values()
                if t.tid not in cycle and t.joins in cycle
            ]
            if outside:
                line += "; also " + "; ".join(outside)
            if not waiters:
                line += "; no thread waits for the GIL"
        return line
    if waiters and holder is not None:
        names = ", ".join(w.label(pid) for w in waiters)
        verb = "is" if len(waiters) == 1 else "are"
        head = f"{names} {verb} waiting for the GIL held by {holder.label(pid)}"
        if holder.state == "R" and holder.syscall is None:
            return f"{head}; tid {holder.tid} is running in {blocked_in(holder.frames)} (busy)"
        sysc = holder.syscall_summary()
        return f"{head}; tid {holder.tid} is blocked in {blocked_in(holder.frames)} ({sysc})"
    futex = sum(1 for t in threads.values() if t.syscall_name() == "futex")
    extra = ""
    if waiters:
        extra = f", {len(waiters)} waiting for the GIL (holder not identified)"
    if native.tool.startswith("none"):
        extra += "; no native stacks"
    return f"no deadlock pattern found; {len(threads)} threads, {futex} waiting on futexes{extra}"
