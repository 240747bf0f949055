"""Where libteardown_probe.so is, and the environment that loads it into a child.

Search order: $TEARDOWN_AUDIT_PROBE (a path; "0" disables the probe), then build/c/ of the
checkout this package runs from (`make probe`), then build/c/ of the current directory (an
installed package run from the checkout, as `make test` does). The probe is not combined with
a sanitizer runtime already in LD_PRELOAD: both interpose pthread_create; TSan must be alone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

ENV_PATH = "TEARDOWN_AUDIT_PROBE"
CHAOS_ENV = "TEARDOWN_PROBE_CHAOS"
SO_NAME = "libteardown_probe.so"
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# harness/teardown_audit/native → the checkout root is two levels above harness/.
_CHECKOUT_BUILD = os.path.join(os.path.dirname(_PACKAGE_ROOT), "build", "c", SO_NAME)


def find_probe_library(environ: Mapping[str, str] | None = None) -> str | None:
    env = os.environ if environ is None else environ
    explicit = env.get(ENV_PATH, "")
    if explicit == "0":
        return None
    if explicit:
        return explicit if os.path.exists(explicit) else None
    for candidate in (_CHECKOUT_BUILD, os.path.abspath(os.path.join("build", "c", SO_NAME))):
        if os.path.exists(candidate):
            return candidate
    return None


def probe_env(
    library: str | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The variables that preload the probe in a child ({} when it is unavailable)."""
    env = os.environ if environ is None else environ
    path = library or find_probe_library(env)
    preload = env.get("LD_PRELOAD", "")
    if path is None or "libtsan" in preload or "libasan" in preload:
        return {}
    if SO_NAME in preload:
        return {"LD_PRELOAD": preload}
    return {"LD_PRELOAD": f"{path} {preload}".strip()}


def chaos_env(seed: int, max_us: int = 2000, scope: str = "") -> dict[str, str]:
    """TEARDOWN_PROBE_CHAOS for a seeded run: delays at thread start, join, mutex and condvar
    operations of the threads (or call sites) of libraries matching `scope` (default: every
    non-interpreter library)."""
    if seed < 1 or not 1 <= max_us <= 1_000_000:
        raise ValueError("chaos needs seed >= 1 and 1 <= max_us <= 1000000")
    value = f"{seed}:{max_us}" + (f":{scope}" if scope else "")
    return {CHAOS_ENV: value}
