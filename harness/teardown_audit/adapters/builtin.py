"""The built-in targets: the project's reference extension (default) and bashkit."""

from __future__ import annotations

from teardown_audit.adapters.base import Adapter
from teardown_audit.adapters.scripted_tool import ScriptedToolAdapter

DEFAULT_TARGET = "teardown_ref"


def teardown_ref() -> Adapter:
    return ScriptedToolAdapter("teardown_ref", install_hint="run `make install` in the repository")


class BashkitAdapter(ScriptedToolAdapter):
    """bashkit >= 0.10 carries the deterministic-teardown fix. Older releases are audited too (the
    report names the version): their failures are the historical bugs."""

    def __init__(self) -> None:
        super().__init__("bashkit", install_hint="pip install 'bashkit>=0.10'")

    def load(self) -> None:
        super().load()
        version = _installed_version("bashkit")
        if version is not None:
            self.name = f"bashkit {version}"


def _installed_version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


BUILTIN = {"teardown_ref": teardown_ref, "bashkit": BashkitAdapter}
