"""The native (C) side of the harness: the LD_PRELOAD attribution probe and its uses.

`binding` (ctypes view of libteardown_probe.so: per-library snapshots, marks, leaks, timeline),
`locate` (where the built .so is, the environment that preloads it, chaos settings),
`exact` (the exact per-library thread/fd checks), `watchdog` (native stacks without ptrace).
"""

from __future__ import annotations

from teardown_audit.native.binding import LibStats, Probe, probe
from teardown_audit.native.locate import chaos_env, find_probe_library, probe_env

__all__ = ["LibStats", "Probe", "chaos_env", "find_probe_library", "probe", "probe_env"]
