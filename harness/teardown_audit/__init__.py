"""teardown_audit: audit Python native extensions for deterministic teardown.

Public API (see specs/harness.md):
- probes: `live_threads()`, `thread_count()`, `fd_snapshot()`, `fd_diff()`
- adapters: `Adapter`, `ScriptedToolAdapter`, `load_adapter(spec)`
- checks: `run_audit(settings)`, `AuditSettings`, `Verdict`
"""

from __future__ import annotations

__version__ = "0.1.0"
