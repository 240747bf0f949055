"""ctypes binding to libteardown_probe.so, loaded into this process with LD_PRELOAD.

`probe()` returns None when the probe is not loaded: callers fall back to /proc counts.
Library 0 is "[unattributed]"; a library is registered the first time one of its call sites
creates a thread or an fd, or when `library_of(module)` asks for it.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from types import ModuleType

PATH_MAX = 256
FD_KINDS = {1: "file", 2: "socket", 3: "pipe", 4: "eventfd", 5: "eventpoll", 6: "dup"}
EVENT_KINDS = {
    1: "create",
    2: "start",
    3: "exit",
    4: "join",
    5: "detach",
    6: "open",
    7: "close",
    8: "mark",
}


class _LibStats(ctypes.Structure):
    _fields_ = [
        ("path", ctypes.c_char * PATH_MAX),
        ("host", ctypes.c_int32),
        ("pad", ctypes.c_int32),
        ("threads_created", ctypes.c_int64),
        ("threads_joined", ctypes.c_int64),
        ("threads_detached", ctypes.c_int64),
        ("threads_exited", ctypes.c_int64),
        ("fds_opened", ctypes.c_int64),
        ("fds_closed", ctypes.c_int64),
    ]


class _ThreadInfo(ctypes.Structure):
    _fields_ = [
        ("created_seq", ctypes.c_uint64),
        ("started_seq", ctypes.c_uint64),
        ("exited_seq", ctypes.c_uint64),
        ("joined_seq", ctypes.c_uint64),
        ("detached_seq", ctypes.c_uint64),
        ("lib", ctypes.c_int32),
        ("tid", ctypes.c_int32),
        ("parent_tid", ctypes.c_int32),
        ("slot", ctypes.c_int32),
        ("name", ctypes.c_char * 16),
    ]


class _FdInfo(ctypes.Structure):
    _fields_ = [
        ("open_seq", ctypes.c_uint64),
        ("close_seq", ctypes.c_uint64),
        ("fd", ctypes.c_int32),
        ("lib", ctypes.c_int32),
        ("kind", ctypes.c_int32),
        ("tid", ctypes.c_int32),
    ]


class _Event(ctypes.Structure):
    _fields_ = [
        ("seq", ctypes.c_uint64),
        ("t_ns", ctypes.c_uint64),
        ("kind", ctypes.c_int32),
        ("lib", ctypes.c_int32),
        ("tid", ctypes.c_int32),
        ("obj", ctypes.c_int32),
    ]


@dataclass(frozen=True)
class LibStats:
    index: int
    path: str
    host: bool
    threads_created: int
    threads_joined: int
    threads_detached: int
    threads_exited: int
    fds_opened: int
    fds_closed: int

    @property
    def name(self) -> str:
        return os.path.basename(self.path) or self.path

    @property
    def threads_alive(self) -> int:
        return self.threads_created - self.threads_exited

    @property
    def fds_open(self) -> int:
        return self.fds_opened - self.fds_closed

    def describe(self) -> str:
        return (
            f"library {self.name}: threads created {self.threads_created}, joined "
            f"{self.threads_joined}, detached {self.threads_detached}, alive {self.threads_alive}"
            f"; fds opened {self.fds_opened}, closed {self.fds_closed}"
        )


@dataclass(frozen=True)
class ThreadLeak:
    tid: int
    name: str
    library: str
    parent_tid: int
    state: str  # "running", "exited, never joined", "detached (running)", ...

    def describe(self) -> str:
        return f"tid {self.tid} '{self.name}' ({self.state}; created by tid {self.parent_tid})"


@dataclass(frozen=True)
class FdLeak:
    fd: int
    kind: str
    library: str
    tid: int
    target: str  # readlink of /proc/self/fd/N when still open, else ""

    def describe(self) -> str:
        target = f" {self.target}" if self.target else ""
        return f"fd {self.fd} {self.kind}{target} (opened by tid {self.tid})"


@dataclass(frozen=True)
class Event:
    seq: int
    t_ns: int
    kind: str
    library: str
    tid: int
    obj: int  # fd, thread slot, or mark label

    def describe(self, t0_ns: int = 0) -> str:
        what = f"fd {self.obj}" if self.kind in ("open", "close") else f"tid {self.tid}"
        if self.kind == "mark":
            what = self.library
        return f"+{(self.t_ns - t0_ns) / 1e6:9.3f} ms {self.kind:7} {what} [{self.library}]"


def _thread_name(tid: int) -> str:
    try:
        with open(f"/proc/self/task/{tid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"


def _fd_target(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


class Probe:
    """The loaded probe. All reads are snapshots of atomics: safe from any thread."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self._lib = lib
        lib.tp_seq.restype = ctypes.c_uint64
        lib.tp_mark.restype = ctypes.c_uint64
        lib.tp_mark.argtypes = [ctypes.c_char_p]
        lib.tp_mark_label.restype = ctypes.c_char_p
        lib.tp_lib_find.argtypes = [ctypes.c_char_p]
        lib.tp_lib_of_address.argtypes = [ctypes.c_void_p]
        lib.tp_thread_leaks.argtypes = [
            ctypes.c_int,
            ctypes.c_uint64,
            ctypes.c_uint64,
            ctypes.POINTER(_ThreadInfo),
            ctypes.c_int,
        ]
        lib.tp_fd_leaks.argtypes = [
            ctypes.c_int,
            ctypes.c_uint64,
            ctypes.c_uint64,
            ctypes.POINTER(_FdInfo),
            ctypes.c_int,
        ]
        lib.tp_timeline.argtypes = [ctypes.c_uint64, ctypes.POINTER(_Event), ctypes.c_int]
        lib.tp_watchdog_report_path.restype = ctypes.c_char_p
        lib.tp_watchdog_set_report_path.argtypes = [ctypes.c_char_p]
        lib.tp_watchdog_arm.argtypes = [ctypes.c_double]
        lib.tp_watchdog_dump.argtypes = [ctypes.c_char_p]
        lib.tp_chaos_seed.restype = ctypes.c_uint32
        lib.tp_chaos_delays.restype = ctypes.c_int64

    # -- libraries ---------------------------------------------------------------------------

    def libraries(self) -> list[LibStats]:
        return [s for s in (self.stats(i) for i in range(self._lib.tp_lib_count())) if s]

    def stats(self, index: int) -> LibStats | None:
        raw = _LibStats()
        if self._lib.tp_lib_stats_get(index, ctypes.byref(raw)) != 0:
            return None
        return LibStats(
            index,
            raw.path.decode(errors="replace"),
            bool(raw.host),
            raw.threads_created,
            raw.threads_joined,
            raw.threads_detached,
            raw.threads_exited,
            raw.fds_opened,
            raw.fds_closed,
        )

    def library_of_file(self, path: str, symbol: str) -> int:
        """The index of the shared object at `path`, registered through one of its symbols."""
        address = ctypes.cast(getattr(ctypes.CDLL(path), symbol), ctypes.c_void_p).value
        return int(self._lib.tp_lib_of_address(address))

    def library_of(self, module: ModuleType) -> int | None:
        """The shared object of an extension module (its PyInit_<name> symbol), or None for a
        module that is not native."""
        path = getattr(module, "__file__", None) or ""
        if not path.endswith(".so"):
            return None
        return self.library_of_file(path, "PyInit_" + module.__name__.rsplit(".", 1)[-1])

    # -- marks, leaks, timeline --------------------------------------------------------------

    def seq(self) -> int:
        return int(self._lib.tp_seq())

    def mark(self, label: str) -> int:
        return int(self._lib.tp_mark(label.encode()))

    def thread_leaks(self, lib: int, since: int, until: int) -> list[ThreadLeak]:
        buf = (_ThreadInfo * 256)()
        n = min(self._lib.tp_thread_leaks(lib, since, until, buf, 256), 256)
        path = self._path(lib)
        leaks = []
        for t in buf[:n]:
            if t.detached_seq:
                state = "detached (exited)" if t.exited_seq else "detached (running)"
            elif t.exited_seq:
                state = "exited, never joined"
            elif t.started_seq:
                state = "running, not joined"
            else:
                state = "not started"
            name = t.name.decode(errors="replace") or _thread_name(t.tid)
            leaks.append(ThreadLeak(t.tid, name, path, t.parent_tid, state))
        return leaks

    def fd_leaks(self, lib: int, since: int, until: int) -> list[FdLeak]:
        buf = (_FdInfo * 1024)()
        n = min(self._lib.tp_fd_leaks(lib, since, until, buf, 1024), 1024)
        path = self._path(lib)
        return [
            FdLeak(
                f.fd,
                FD_KINDS.get(f.kind, "?"),
                path,
                f.tid,
                _fd_target(f.fd) if not f.close_seq else "",
            )
            for f in buf[:n]
        ]

    def timeline(self, since: int, limit: int = 4096) -> list[Event]:
        buf = (_Event * limit)()
        n = self._lib.tp_timeline(since, buf, limit)
        events = []
        for e in buf[:n]:
            kind = EVENT_KINDS.get(e.kind, "?")
            where = self._lib.tp_mark_label(e.obj).decode() if kind == "mark" else self._name(e.lib)
            events.append(Event(e.seq, e.t_ns, kind, where, e.tid, e.obj))
        return events

    # -- watchdog and chaos ------------------------------------------------------------------

    @property
    def watchdog_signal(self) -> int:
        return int(self._lib.tp_watchdog_signal())

    def set_report_path(self, path: str) -> None:
        if self._lib.tp_watchdog_set_report_path(path.encode()) != 0:
            raise ValueError(f"report path too long: {path}")

    def arm_watchdog(self, seconds: float) -> None:
        if self._lib.tp_watchdog_arm(seconds) != 0:
            raise OSError("timer_create/timer_settime failed")

    def chaos(self) -> tuple[int, int]:
        """(seed, delays injected so far); seed 0 means chaos is off."""
        return int(self._lib.tp_chaos_seed()), int(self._lib.tp_chaos_delays())

    def _path(self, lib: int) -> str:
        stats = self.stats(lib)
        return stats.path if stats else "?"

    def _name(self, lib: int) -> str:
        return os.path.basename(self._path(lib))


_PROBE: Probe | None = None


def probe() -> Probe | None:
    """The probe loaded in this process (LD_PRELOAD), or None."""
    global _PROBE
    if _PROBE is None:
        try:
            lib = ctypes.CDLL(None)
            loaded = lib.tp_loaded()
        except (AttributeError, OSError):
            return None
        if loaded != 1:
            return None
        _PROBE = Probe(lib)
    return _PROBE
