"""Where an adapter's exit scripts are written: a kept directory, so repro commands keep working."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile

from teardown_audit.adapters import EXIT_SCENARIOS, Adapter


def scripts_dir(adapter: Adapter) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", os.path.basename(adapter.spec or adapter.name))[:40]
    digest = hashlib.sha1((adapter.spec or adapter.name).encode()).hexdigest()[:8]
    path = os.path.join(tempfile.gettempdir(), f"teardown-audit-{os.getuid()}", f"{safe}-{digest}")
    os.makedirs(path, exist_ok=True)
    return path


def write_exit_scripts(adapter: Adapter) -> dict[str, str]:
    """{scenario: path of its script} for the "clean" and "abandoned" exit scenarios."""
    directory = scripts_dir(adapter)
    paths = {}
    # Without a timeout nothing can be abandoned: only the clean scenario applies.
    scenarios = EXIT_SCENARIOS if adapter.supports_timeout else ("clean",)
    for scenario in scenarios:
        path = os.path.join(directory, f"exit_{scenario}.py")
        with open(path, "w") as f:
            f.write(adapter.exit_script(scenario))
        paths[scenario] = path
    return paths
