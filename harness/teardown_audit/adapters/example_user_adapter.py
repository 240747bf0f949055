"""A worked example: auditing your own extension. Copy this file next to your project and edit.

Suppose your extension `myext` has a `Client` that owns native threads and runs Python callbacks
on them::

    client = myext.Client(on_message=callback, timeout=0.5)
    client.request("topic")     # runs the callback on the client's thread, waits for the result
    del client                  # must join the threads and close the fds before returning

Then:

    teardown-audit audit --target path/to/example_user_adapter.py        # finds ADAPTER
    teardown-audit audit --target mypkg.audit_adapter:MyExtAdapter       # or by module:object

The harness never sees `myext` directly: it calls `create` (hand the harness's `fast` and `slow`
callbacks to your object), `call` (run one of them through your object, synchronously) and drops
the handle by deleting the only reference. `counters` (optional) enables the exact mode of the
threads check; `exit_script` (optional) gives a standalone script for the exit checks — the
default one drives this adapter through the harness, which works but is a longer reproduction.

This example drives a stand-in built on the standard library (a worker thread with its own event
loop per call), so it runs anywhere: `teardown-audit audit --target <this file>` passes.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import threading
from collections.abc import Awaitable
from typing import Any, Callable

from teardown_audit.adapters import FAST, Adapter, Outcome
from teardown_audit.probes import wait_thread_gone


class _Request:
    """State of one request, shared with its worker thread. Deliberately holds no reference to
    the client: an abandoned request must not keep its client alive past the drop."""

    def __init__(self, callback: Callable[[], Any]) -> None:
        self.callback = callback
        self.done = threading.Event()
        self.started = threading.Event()
        self.reply = ""
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task[Any] | None = None
        self.thread = threading.Thread(target=_serve, args=(self,), daemon=True)

    def cancel(self) -> None:
        self.started.wait()
        assert self.loop is not None and self.task is not None
        try:
            self.loop.call_soon_threadsafe(self.task.cancel)
        except RuntimeError:  # the loop already closed: the callback has finished
            pass


def _serve(request: _Request) -> None:
    loop = asyncio.new_event_loop()

    async def invoke() -> Any:
        value = request.callback()
        return await value if inspect.isawaitable(value) else value

    try:
        request.loop, request.task = loop, loop.create_task(invoke())
        request.started.set()
        request.reply = str(loop.run_until_complete(request.task))
    except asyncio.CancelledError:
        request.reply = "cancelled"
    finally:
        loop.close()  # fds freed before the thread can be joined
        request.done.set()


def _join(thread: threading.Thread) -> None:
    # Thread.join() returns while the OS thread is still exiting; pthread_join (what a native
    # extension calls) does not. Wait for the task to leave /proc so the stand-in is as exact.
    thread.join()
    if thread.native_id is not None:
        wait_thread_gone(thread.native_id)


class _StandInClient:
    """Plays the role of `myext.Client`: a worker thread with its own asyncio loop per request;
    a timeout abandons the request; the drop cancels abandoned requests and joins every worker."""

    def __init__(self, callbacks: dict[str, Callable[[], Any]], timeout: float | None) -> None:
        self._callbacks = callbacks
        self._timeout = timeout
        self._abandoned: list[_Request] = []

    def request(self, topic: str) -> str:
        request = _Request(self._callbacks[topic])
        request.thread.start()
        if not request.done.wait(self._timeout):
            self._abandoned.append(request)
            return "timeout"
        _join(request.thread)
        return request.reply

    def __del__(self) -> None:
        if sys.is_finalizing():
            return  # at exit: hands off, never join (the OS reclaims daemon threads)
        for request in self._abandoned:
            request.cancel()
            _join(request.thread)  # a real extension must release the GIL around its join


class ExampleAdapter(Adapter):
    name = "example (stand-in client)"

    def load(self) -> None:
        # Real adapter: `import myext` here and raise TargetUnavailable("myext is not installed")
        # on ImportError, so the CLI prints one line and exits 2.
        pass

    def create(
        self,
        fast: Callable[[], str],
        slow: Callable[[], Awaitable[str]],
        timeout_seconds: float | None,
    ) -> Any:
        return _StandInClient({"fast": fast, "slow": slow}, timeout_seconds)

    def call(self, handle: Any, which: str) -> Outcome:
        reply = handle.request(which)
        timed_out = reply == "timeout"
        return Outcome(ok=reply == "ok" if which == FAST else not timed_out, timed_out=timed_out,
                       detail=f"reply {reply!r}")  # fmt: skip


ADAPTER = ExampleAdapter()
