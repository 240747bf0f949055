"""A pure-Python look-alike of teardown_ref's ScriptedTool, with switchable teardown faults.

Each target file in this directory subclasses ScriptedTool and turns one fault on, so every check
of the harness has a target it must fail on. Structure as in teardown_ref: each tool owns an idle
"pool" thread; each execution runs the callback as an asyncio Task on a private-loop worker thread
with its own event loop (3 fds); a timeout abandons the execution; the drop cancels abandoned
callbacks, joins the workers (which close their loops) and the pool. Once the interpreter is
exiting (atexit), nothing is joined: the OS reclaims the daemon threads.
"""

from __future__ import annotations

import asyncio
import atexit
import ctypes
import inspect
import os
import signal
import threading
import time
import weakref
from collections import Counter
from dataclasses import dataclass

from teardown_audit.adapters import ScriptedToolAdapter

_lock = threading.Lock()
_counts: Counter[str] = Counter(tools=0, workers=0, pool_threads=0, open_loops=0, inflight=0)
_LEAKED_LOOPS: list[asyncio.AbstractEventLoop] = []
_LIVE_TOOLS: weakref.WeakSet[ScriptedTool] = weakref.WeakSet()
_at_exit = False


def _count(key: str, delta: int) -> None:
    with _lock:
        _counts[key] += delta


def stats() -> dict[str, int]:
    with _lock:
        return dict(_counts)


def interpreter_at_exit() -> bool:
    return _at_exit


def adapter_for(module_name: str, path: str) -> ScriptedToolAdapter:
    return ScriptedToolAdapter(module_name, path=path)


def _name_thread(name: str) -> None:
    # Python < 3.14 does not name OS threads; name them so the harness evidence is readable.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME


def join_native(thread: threading.Thread) -> None:
    """Thread.join() returns before the OS thread has exited; pthread_join (what a native
    extension uses) does not. Wait for the task to leave /proc too, so this target is as exact."""
    thread.join()
    tid = thread.native_id
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return
        if int(fields[6]) & 0x4:  # PF_EXITING
            return
        os.sched_yield()


def _pool_main(stop: threading.Event) -> None:
    _name_thread("fake-pool")
    stop.wait()


@dataclass
class ExecResult:
    exit_code: int
    stdout: str
    stderr: str
    error: str | None = None

    @property
    def success(self) -> bool:
        return self.exit_code == 0


class _FaultView:
    def __init__(self, tool: ScriptedTool) -> None:
        self.drop_deadlock = tool.drop_deadlock
        self.leak_loop = tool.leak_loop
        self.unclosed_loop = tool.unclosed_loop
        self.stale_counter = tool.stale_counter


class _Execution:
    """One call: a private-loop worker that runs the callback as an asyncio Task."""

    def __init__(self, tool: ScriptedTool, name: str, callback: object) -> None:
        # No reference to the tool itself: an abandoned execution must not keep its tool alive.
        self.faults = _FaultView(tool)
        self.registry_lock = tool._registry_lock
        self.name, self.callback = name, callback
        self.done = threading.Event()
        self.task_ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task[object] | None = None
        self.result = ExecResult(1, "", f"{name}: not run", "internal")
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        _count("workers", 1)
        self.thread.start()

    def cancel(self) -> None:
        self.task_ready.wait()
        assert self.loop is not None and self.task is not None
        try:
            self.loop.call_soon_threadsafe(self.task.cancel)
        except RuntimeError:  # loop already closed: the callback finished
            pass

    async def _invoke(self) -> object:
        value = self.callback({}, None)  # type: ignore[operator]
        if inspect.isawaitable(value):
            value = await value
        return value

    def _run(self) -> None:
        _name_thread("fake-worker")
        loop = asyncio.new_event_loop()
        _count("open_loops", 1)
        _count("inflight", 1)
        self.loop = loop
        try:
            self.task = loop.create_task(self._invoke())
            self.task_ready.set()
            try:
                value = loop.run_until_complete(self.task)
                self.result = ExecResult(0, str(value), "")
            except asyncio.CancelledError:
                self.result = ExecResult(1, "", f"{self.name}: cancelled", "cancelled")
            except Exception as exc:
                self.result = ExecResult(1, "", f"{self.name}: {type(exc).__name__}: {exc}")
        finally:
            _count("inflight", -1)
            if self.faults.drop_deadlock:
                with self.registry_lock:  # unregistering needs the lock the drop holds
                    pass
            if self.faults.leak_loop:
                _LEAKED_LOOPS.append(loop)
            elif not self.faults.unclosed_loop:
                loop.close()
                _count("open_loops", -1)
            del loop
            if not self.faults.stale_counter:
                _count("workers", -1)
            self.done.set()


class ScriptedTool:
    # Faults: each target file turns one on.
    leak_thread = False  # the pool thread is never stopped: +1 thread per drop
    leak_loop = False  # every execution's loop is kept open forever: +3 fds per drop
    unclosed_loop = False  # loops dropped without close(): fds freed at a GC pass, ResourceWarning
    no_cancel = False  # the drop neither cancels nor joins abandoned callbacks (hands-off)
    drop_deadlock = False  # the drop joins a worker while holding the lock the worker needs
    ref_cycle = False  # the tool references itself: only a GC pass tears it down
    stale_counter = False  # stats()["workers"] is never decremented
    exit_fault: str | None = None  # "segv" | "fatal" | "hang" at exit with a callback in flight

    def __init__(self, name: str, *, timeout_seconds: float | None = None) -> None:
        self.name = name
        self.timeout_seconds = timeout_seconds
        self._tools: dict[str, object] = {}
        self._registry_lock = threading.Lock()
        self._inflight: list[_Execution] = []
        self._pool_stop = threading.Event()
        self._pool = threading.Thread(target=_pool_main, args=(self._pool_stop,), daemon=True)
        self._pool.start()
        _count("pool_threads", 1)
        _count("tools", 1)
        _LIVE_TOOLS.add(self)
        if self.ref_cycle:
            self._self = self

    def add_tool(self, name: str, description: str, callback: object) -> None:
        if not callable(callback):
            raise TypeError("callback must be callable")
        self._tools[name] = callback

    def execute_sync(self, commands: str) -> ExecResult:
        name = commands.split()[0]
        callback = self._tools.get(name)
        if callback is None:
            return ExecResult(127, "", f"{name}: command not found")
        execution = _Execution(self, name, callback)
        with self._registry_lock:
            self._inflight.append(execution)
        execution.start()
        if not execution.done.wait(self.timeout_seconds):
            return ExecResult(1, "", f"{name}: timed out", "timeout")  # abandoned, still registered
        join_native(execution.thread)
        with self._registry_lock:
            self._inflight.remove(execution)
        return execution.result

    def __del__(self) -> None:
        if _at_exit:
            return  # hands off: never join while the interpreter finalizes
        teardown = _Teardown(
            list(self._inflight),
            self._registry_lock,
            self.drop_deadlock,
            self.no_cancel,
            None if self.leak_thread else (self._pool_stop, self._pool),
        )
        self._inflight.clear()
        if threading.current_thread() in {e.thread for e in teardown.inflight}:
            # The last reference went on our own worker (V5): never join yourself, hand off.
            threading.Thread(target=teardown.run, name="fake-shutdown", daemon=True).start()
        else:
            teardown.run()


@dataclass
class _Teardown:
    """What a drop must do, held apart from the tool so that it can run on another thread."""

    inflight: list[_Execution]
    registry_lock: threading.Lock
    drop_deadlock: bool
    no_cancel: bool
    pool: tuple[threading.Event, threading.Thread] | None

    def run(self) -> None:
        if self.drop_deadlock:
            with self.registry_lock:
                for execution in self.inflight:
                    execution.cancel()
                    join_native(execution.thread)
        elif not self.no_cancel:
            for execution in self.inflight:
                execution.cancel()
                join_native(execution.thread)
        if self.pool is not None:
            stop, pool = self.pool
            stop.set()
            join_native(pool)
            _count("pool_threads", -1)
        _count("tools", -1)


def _on_exit() -> None:
    global _at_exit
    _at_exit = True
    for tool in list(_LIVE_TOOLS):
        if tool.exit_fault and (tool._inflight or tool.exit_fault == "hang"):
            _exit_fault(tool.exit_fault)


def _exit_fault(kind: str) -> None:
    if kind == "segv":
        signal.signal(signal.SIGSEGV, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGSEGV)
    elif kind == "fatal":
        # What CPython itself prints for a thread-state bug at exit (bashkit's V3), then abort().
        ctypes.pythonapi.Py_FatalError(b"PyGILState_Release: thread state must be current")
    elif kind == "hang":
        threading.Event().wait()


atexit.register(_on_exit)
