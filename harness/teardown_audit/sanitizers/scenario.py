"""The default workload of a sanitizer run, in ONE process (valgrind does not follow children).

Drives the target through its adapter: create → fast call → drop cycles, an abandoned slow call
and its drop (cancellation while the loop thread runs Python), a few concurrent drops on
non-main threads, and `Bash`-like shared objects when the adapter has them. With --leak-check
(ASan), LeakSanitizer then checks the heap once, the interpreter still alive and every object
dropped: see tools.py for why not at exit.

    python -m teardown_audit.sanitizers.scenario [--target T] [--cycles N] [--leak-check]
Prints `SANITIZER_SCENARIO ok`; exit 0, 1 when an operation failed, 2 on bad input.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import sys
import threading
from collections.abc import Sequence

from teardown_audit.adapters import DEFAULT_TARGET, FAST, SLOW, Adapter, TargetError, load_adapter
from teardown_audit.callbacks import ProbeCallbacks

# Short: under valgrind every step is ~70x slower. The timeout must still be long enough for a
# fast call to finish under valgrind, and the slow callback must outlast it (so it is abandoned).
ABANDON_TIMEOUT = 2.0
HOLD_SECONDS = 60.0


def _cycles(adapter: Adapter, cb: ProbeCallbacks, n: int) -> list[str]:
    problems = []
    for i in range(n):
        handle = adapter.create(cb.fast, cb.slow, None)
        outcome = adapter.call(handle, FAST)
        del handle
        if not outcome.ok:
            problems.append(f"cycle {i}: fast call failed: {outcome.detail}")
    return problems


def _abandon(adapter: Adapter, cb: ProbeCallbacks) -> list[str]:
    if not adapter.supports_timeout:
        return []
    handle = adapter.create(cb.fast, cb.slow, ABANDON_TIMEOUT)
    outcome = adapter.call(handle, SLOW)
    del handle  # the abandoned callback is cancelled by this drop
    return [] if outcome.timed_out else [f"slow call did not time out: {outcome.detail}"]


def _concurrent(adapter: Adapter, cb: ProbeCallbacks, threads: int) -> list[str]:
    problems: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        found = _cycles(adapter, cb, 2)
        with lock:
            problems.extend(found)

    workers = [threading.Thread(target=work, name=f"san-{i}") for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return problems


def _shared(adapter: Adapter, cb: ProbeCallbacks) -> list[str]:
    handle = adapter.create_shared({FAST: cb.fast}, None)
    if handle is None:
        return []
    outcomes = [adapter.call(handle, FAST) for _ in range(3)]
    del handle
    return [f"shared call failed: {o.detail}" for o in outcomes if not o.ok]


def leak_check() -> int:
    """LeakSanitizer's on-demand check: 1 when it found leaks (reported to its log)."""
    try:
        check = ctypes.CDLL(None).__lsan_do_recoverable_leak_check
    except AttributeError:
        raise RuntimeError("--leak-check needs the ASan runtime preloaded (LD_PRELOAD)") from None
    check.restype = ctypes.c_int
    return int(check())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="teardown_audit.sanitizers.scenario")
    parser.add_argument("--target", default=DEFAULT_TARGET)
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--leak-check", action="store_true")
    args = parser.parse_args(argv)
    if args.cycles < 1 or args.threads < 1:
        print("scenario: error: --cycles and --threads must be at least 1", file=sys.stderr)
        return 2
    try:
        adapter = load_adapter(args.target)
    except TargetError as exc:
        print(f"scenario: error: {exc}", file=sys.stderr)
        return 2
    cb = ProbeCallbacks(hold_seconds=HOLD_SECONDS)
    problems = _cycles(adapter, cb, 1)  # warm-up: lazily created state is not a leak
    problems += _cycles(adapter, cb, args.cycles)
    problems += _abandon(adapter, cb)
    problems += _concurrent(adapter, cb, args.threads)
    problems += _shared(adapter, cb)
    gc.collect()
    if args.leak_check:
        print(f"SANITIZER_LEAK_CHECK {'leaks' if leak_check() else 'none'}", flush=True)
    for problem in problems:
        print(f"scenario: {problem}", file=sys.stderr)
    print(f"SANITIZER_SCENARIO {'failed' if problems else 'ok'}", flush=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
