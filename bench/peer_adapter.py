"""The peer as an audit target: `teardown-audit audit --target bench.peer_adapter:ADAPTER`
(with the repository root on PYTHONPATH). The generic ScriptedTool adapter drives it, exactly as
it drives teardown_ref and bashkit; `bench.peer.stats()` gives the exact mode its counters."""

from __future__ import annotations

from teardown_audit.adapters.scripted_tool import ScriptedToolAdapter

SPEC = "bench.peer_adapter:ADAPTER"
ADAPTER = ScriptedToolAdapter("bench.peer")
