"""The pure-Python peer: teardown_ref's contract (specs/protocol.md) with the standard library only.

What the benchmarks compare the C reference against, so it must be correct, not a straw man:
one asyncio loop thread per tool (callbacks run there), a thread pool for the execution jobs
(bashkit's blocking pool; `pool=False` runs the job on the caller's thread, one hop fewer), and
`run_coroutine_threadsafe` between them. Its drop, while the interpreter is alive:

1. marks the tool closing under the lock every dispatch takes, so no call is queued after it;
2. asks the loop thread to cancel every in-flight callback and stop; queued calls that had not
   started are then rejected, and the loop thread waits until every cancelled callback has
   *observed* CancelledError before it closes its loop (fds freed) and exits;
3. joins the loop thread and the pool threads (`Thread.join` releases the GIL: no deadlock),
   then waits for each OS thread to leave /proc, because `Thread.join` returns while the pthread
   is still exiting and a correct drop leaves no thread behind, exactly;
4. never joins the current thread: a drop on the loop thread or a pool thread only asks them to
   stop, and they exit on their own (bashkit's hand-off, V5);
5. at interpreter exit (`sys.is_finalizing()`) joins and wakes nothing: the loop thread is a
   daemon, and the OS reclaims it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import inspect
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Optional

from teardown_audit.probes import wait_thread_gone

from bench.peer_script import Command, ScriptError, parse

REJECTED = "tool is closing; call not started"
# Pool jobs run scripts concurrently; a job never blocks beyond its deadline, so a few suffice.
POOL_WORKERS = 4

_counts: Counter[str] = Counter()
_counts_lock = threading.Lock()


def _count(key: str, delta: int) -> None:
    with _counts_lock:
        _counts[key] += delta


def stats() -> dict[str, int]:
    """Process-wide counts of the peer's own objects (exact mode of the audit's threads check)."""
    keys = ("tools", "loop_threads", "pool_threads", "open_loops", "inflight", "handoffs")
    with _counts_lock:
        return {key: _counts[key] for key in keys}


@dataclass(frozen=True)
class PeerResult:
    """teardown_ref.ExecResult's fields."""

    exit_code: int
    stdout: str
    stderr: str
    error: Optional[str]

    @property
    def success(self) -> bool:
        return self.exit_code == 0


class _Rejected(Exception):
    """A call that reached the loop after the drop began: never started."""


class _Engine:
    """The threads and the loop. Holds no reference to the tool, so a job or an abandoned
    callback can never keep the tool alive past its drop."""

    def __init__(self, timeout: Optional[float], use_pool: bool) -> None:
        self.timeout = timeout
        self.use_pool = use_pool
        self.lock = threading.Lock()
        self.closing = False
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.thread: Optional[threading.Thread] = None
        self.pool: Optional[concurrent.futures.ThreadPoolExecutor] = None
        self.pool_tids: dict[int, int] = {}  # ident -> native id
        self.inflight: set[asyncio.Task[Any]] = set()  # touched on the loop thread only

    # -- threads ---------------------------------------------------------------------------
    def _start_loop(self) -> asyncio.AbstractEventLoop:
        """Called with the lock held, on the first dispatch."""
        if self.loop is None:
            self.loop = asyncio.new_event_loop()
            _count("open_loops", 1)
            self.thread = threading.Thread(
                target=self._serve, args=(self.loop,), name="peer-loop", daemon=True
            )
            _count("loop_threads", 1)
            self.thread.start()
        return self.loop

    def _serve(self, loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()  # until _stop_on_loop
            loop.run_until_complete(_drain())  # cancelled callbacks observe it; queued rejected
        finally:
            loop.close()
            _count("open_loops", -1)
            _count("loop_threads", -1)

    def _stop_on_loop(self) -> None:
        for task in list(self.inflight):
            task.cancel()
        assert self.loop is not None
        self.loop.stop()

    def _pool_thread_started(self) -> None:
        with self.lock:
            self.pool_tids[threading.get_ident()] = threading.get_native_id()
        _count("pool_threads", 1)

    def submit_job(self, job: Callable[[], PeerResult]) -> concurrent.futures.Future[PeerResult]:
        with self.lock:
            if self.closing:
                raise _Rejected
            if self.pool is None:
                self.pool = concurrent.futures.ThreadPoolExecutor(
                    POOL_WORKERS, "peer-pool", initializer=self._pool_thread_started
                )
            return self.pool.submit(job)

    # -- one callback ----------------------------------------------------------------------
    def dispatch(self, callback: Callable[..., Any], *args: Any) -> concurrent.futures.Future[Any]:
        """Start `callback(*args)` on the loop thread; never blocks, needs no loop-side lock."""
        with self.lock:  # atomic with `closing`: nothing is queued after the drop began
            if self.closing:
                raise _Rejected
            loop = self._start_loop()
            return asyncio.run_coroutine_threadsafe(self._invoke(callback, args), loop)

    async def _invoke(self, callback: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        if self.closing:  # queued before the drop, not started: rejected
            raise _Rejected
        task = asyncio.current_task()
        assert task is not None
        self.inflight.add(task)
        _count("inflight", 1)
        try:
            value = callback(*args)
            return await value if inspect.isawaitable(value) else value
        finally:
            self.inflight.discard(task)
            _count("inflight", -1)

    # -- the drop --------------------------------------------------------------------------
    def close(self) -> None:
        with self.lock:
            if self.closing:
                return
            self.closing = True
            loop, thread, pool = self.loop, self.thread, self.pool
            pool_tids = dict(self.pool_tids)
        if sys.is_finalizing():
            return  # exit regime: wake nothing, join nothing
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._stop_on_loop)
            except RuntimeError:  # the loop already closed
                pass
        here = threading.get_ident()
        if (thread is not None and thread.ident == here) or here in pool_tids:
            # Never join the current thread: a detached thread does the joins (hand-off).
            _count("handoffs", 1)
            threading.Thread(
                target=_join_all, args=(thread, pool, pool_tids, True), name="peer-shutdown"
            ).start()
            return
        _join_all(thread, pool, pool_tids, False)


def _join_all(
    thread: Optional[threading.Thread],
    pool: Optional[concurrent.futures.ThreadPoolExecutor],
    pool_tids: dict[int, int],
    handoff: bool,
) -> None:
    if thread is not None:
        thread.join()
        if thread.native_id is not None:
            wait_thread_gone(thread.native_id)
    if pool is not None:
        pool.shutdown(wait=True)
        for native_id in pool_tids.values():
            wait_thread_gone(native_id)
        _count("pool_threads", -len(pool_tids))
    if handoff:
        _count("handoffs", -1)


async def _drain() -> None:
    """Run what was queued before the stop until nothing but this task is left."""
    me = asyncio.current_task()
    while True:
        await asyncio.sleep(0)  # handles queued before the stop create their tasks now
        others = [t for t in asyncio.all_tasks() if t is not me]
        if not others:
            return
        await asyncio.gather(*others, return_exceptions=True)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"callback returned {type(value).__name__}, not str")
    return value


class _Tool:
    """What ScriptedTool and Bash share: the engine, the callbacks, the drop."""

    def __init__(self, timeout_seconds: Optional[float], pool: bool) -> None:
        self._callbacks: dict[str, Callable[..., Any]] = {}
        self._engine = _Engine(timeout_seconds, pool)
        _count("tools", 1)

    def _bind(self, command: Command) -> Optional[tuple[Callable[..., Any], tuple[Any, ...]]]:
        """(callback, its arguments before stdin), or None when the words are not accepted."""
        raise NotImplementedError

    def execute_sync(self, commands: str) -> PeerResult:
        try:
            pipelines = parse(commands)
        except ScriptError as exc:
            return PeerResult(2, "", f"{exc}\n", None)
        unknown = [c.name for p in pipelines for c in p if c.name not in self._callbacks]
        if unknown:
            return PeerResult(127, "", f"{unknown[0]}: command not found\n", None)
        steps = [[self._bind(c) for c in p] for p in pipelines]
        if any(step is None for p in steps for step in p):
            return PeerResult(2, "", "unexpected argument\n", None)
        engine = self._engine
        job = _Job(engine, steps)  # type: ignore[arg-type]  # no None left, checked above
        try:
            if not engine.use_pool:
                return job.run()
            return engine.submit_job(job.run).result()
        except _Rejected:
            return PeerResult(1, "", f"{REJECTED}\n", REJECTED)

    def close(self) -> None:
        """What the drop does; idempotent."""
        engine = getattr(self, "_engine", None)  # None: __init__ failed half-way
        if engine is None or engine.closing:
            return
        engine.close()
        _count("tools", -1)

    def __del__(self) -> None:
        self.close()


class ScriptedTool(_Tool):
    """`ScriptedTool(name, timeout_seconds=)`, `.add_tool(name, description, cb)` with
    `cb(params: dict, stdin: str | None) -> str`, sync or `async def`; `execute_sync(cmds)`."""

    def __init__(
        self, name: str, timeout_seconds: Optional[float] = None, *, pool: bool = True
    ) -> None:
        super().__init__(timeout_seconds, pool)
        self.name = name

    def add_tool(self, name: str, description: str, callback: Callable[..., Any]) -> None:
        del description  # shown by bashkit's help; the benchmarks need none
        self._callbacks[name] = callback

    def _bind(self, command: Command) -> Optional[tuple[Callable[..., Any], tuple[Any, ...]]]:
        if command.args:
            return None
        return self._callbacks[command.name], (dict(command.params),)


@dataclass(frozen=True)
class BuiltinContext:
    """What a Bash builtin receives (teardown_ref's and bashkit's `ctx`)."""

    name: str
    argv: list[str]
    stdin: Optional[str]


class Bash(_Tool):
    """`Bash(custom_builtins={name: cb}, timeout_seconds=)` with `cb(ctx)`: the same engine, so
    every call runs on the tool's one loop thread, like teardown_ref's Bash."""

    def __init__(
        self,
        custom_builtins: Optional[dict[str, Callable[..., Any]]] = None,
        timeout_seconds: Optional[float] = None,
        *,
        pool: bool = True,
    ) -> None:
        super().__init__(timeout_seconds, pool)
        for name, callback in (custom_builtins or {}).items():
            self._callbacks[name] = functools.partial(_call_builtin, callback, name)

    def _bind(self, command: Command) -> Optional[tuple[Callable[..., Any], tuple[Any, ...]]]:
        argv = [*command.args, *(f"--{k}={v}" for k, v in command.params.items())]
        return self._callbacks[command.name], (argv,)


def _call_builtin(callback: Callable[..., Any], name: str, argv: list[str], stdin: Any) -> Any:
    return callback(BuiltinContext(name, argv, stdin))


class _Job:
    """One execution: runs the pipelines with the tool's deadline (on a pool thread)."""

    def __init__(
        self, engine: _Engine, steps: list[list[tuple[Callable[..., Any], tuple[Any, ...]]]]
    ) -> None:
        self.engine = engine
        self.steps = steps

    def run(self) -> PeerResult:
        engine = self.engine
        deadline = None if engine.timeout is None else time.monotonic() + engine.timeout
        out: list[str] = []
        for pipeline in self.steps:
            stdin: Optional[str] = None
            for callback, args in pipeline:
                try:
                    future = engine.dispatch(callback, *args, stdin)
                except _Rejected:
                    return PeerResult(1, "".join(out), f"{REJECTED}\n", REJECTED)
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    stdin = _text(future.result(left))
                except concurrent.futures.TimeoutError:
                    # Abandoned, not cancelled: it runs on until the drop cancels it.
                    return PeerResult(1, "".join(out), "timed out\n", "timeout")
                except _Rejected:
                    return PeerResult(1, "".join(out), f"{REJECTED}\n", REJECTED)
                except (Exception, asyncio.CancelledError) as exc:
                    return PeerResult(1, "".join(out), f"{type(exc).__name__}: {exc}\n", None)
            out.append(stdin or "")
        return PeerResult(0, "".join(out), "", None)
