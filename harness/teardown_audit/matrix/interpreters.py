"""What one interpreter of the matrix is, as reported by the interpreter itself."""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from typing import Any

# The oldest Python the project supports (pyproject.toml: requires-python = ">=3.9").
MIN_SUPPORTED = (3, 9)


@dataclass(frozen=True)
class Interpreter:
    path: str  # the path it was found at (what the matrix runs)
    executable: str  # realpath of sys.executable: two paths to one binary are one interpreter
    version: str  # "3.11.7"
    abiflags: str  # "", "d", "t", "td"
    debug: bool  # Py_DEBUG build
    free_threaded: bool  # Py_GIL_DISABLED build
    implementation: str  # "cpython"
    source: str  # "pyenv", "system" or "given" (--python PATH)

    @property
    def minor(self) -> tuple[int, int]:
        major, minor = self.version.split(".")[:2]
        return int(major), int(minor)

    @property
    def version_key(self) -> tuple[tuple[int, ...], bool]:
        """Sorts 3.11.10 after 3.11.7 and 3.14.0rc1 before 3.14.0."""
        numbers = tuple(int(n) for n in re.findall(r"\d+", self.version)[:3])
        return numbers, self.version.replace(".", "").isdigit()

    @property
    def tag(self) -> str:
        """Unique per build: version + ABI flags, e.g. 3.11.7, 3.11.2d, 3.13.0t."""
        return f"{self.version}{self.abiflags}"

    @property
    def flavour(self) -> str:
        """The family a --python name matches: 3.11, 3.11d, 3.13t."""
        major, minor = self.minor
        return f"{major}.{minor}{self.abiflags}"

    @property
    def label(self) -> str:
        """Column heading: short, and says debug/free-threaded in words."""
        kind = {"d": "-debug", "t": "t", "td": "t-debug"}.get(self.abiflags, self.abiflags)
        return f"{self.version}{kind}"

    @property
    def supported(self) -> bool:
        return self.implementation == "cpython" and self.minor >= MIN_SUPPORTED

    @property
    def venv_name(self) -> str:
        """`.venv/matrix-<venv_name>`: never a default `.venv/py3.X` used by `make test`."""
        return f"matrix-{self.tag}-{self.source}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Interpreter:
        try:
            return cls(**{k: raw[k] for k in cls.__dataclass_fields__})
        except KeyError as exc:
            raise ValueError(f"interpreter record without {exc.args[0]!r}") from None


def same_binary(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)
