"""Known bound: a callback blocking without awaiting delays the drop but cannot deadlock it.

id: blocking-callback-bound
origin: bashkit PR 2009, documented bound (time.sleep inside async def cannot be cancelled
  mid-section; teardown waits for it with the GIL released)
correct: the drop waits for the blocking section (about 0.3 s) while other Python threads run
broken: the drop deadlocks, or holds the GIL so that no other Python thread runs meanwhile
"""

import asyncio
import threading
import time

from teardown_audit.adapters import SLOW
from teardown_audit.scenario import broken, correct, target

BLOCK = 0.3
released = threading.Event()


def fast() -> str:
    return "ok"


async def blocking() -> str:
    released.wait(10)  # blocks the target's loop thread, no await
    await asyncio.sleep(30)
    return "late"


adapter = target()
tool = adapter.create(fast, blocking, 0.05)
if not adapter.call(tool, SLOW).timed_out:
    broken("the blocking call did not time out")
ticks = []
ticker = threading.Thread(target=lambda: (time.sleep(BLOCK), ticks.append(1), released.set()))
ticker.start()
start = time.monotonic()
del tool
took = time.monotonic() - start
ticker.join(10)
if not ticks:
    broken(f"no Python thread ran while the drop waited ({took:.2f} s): the GIL was held")
correct(f"the drop waited {took:.3f} s for the blocking section, with the GIL released")
