"""Results of a matrix run: per interpreter, the merged JSON, JUnit, and merging shards."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

from teardown_audit.matrix.interpreters import Interpreter
from teardown_audit.report import write_junit
from teardown_audit.verdict import Verdict

KIND = "teardown-audit-matrix"
FORMAT = 1


@dataclass
class InterpreterResult:
    interp: Interpreter
    verdicts: list[Verdict] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        # No verdict at all is not a pass: something stopped the run before any step.
        return bool(self.verdicts) and all(v.ok for v in self.verdicts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "interpreter": self.interp.to_dict(),
            "ok": self.ok,
            "elapsed": self.elapsed,
            "verdicts": [v.to_dict() for v in self.verdicts],
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> InterpreterResult:
        return cls(
            Interpreter.from_dict(raw["interpreter"]),
            [Verdict.from_dict(v) for v in raw["verdicts"]],
            float(raw["elapsed"]),
        )

    def write_junit(self, path: str) -> None:
        write_junit(path, self.verdicts, f"python{self.interp.label}", self.elapsed)


@dataclass
class MatrixResult:
    results: list[InterpreterResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    shard: Optional[tuple[int, int]] = None
    elapsed: float = 0.0
    problems: list[str] = field(default_factory=list)  # failures of the run as a whole

    @property
    def ok(self) -> bool:
        if self.problems or not all(r.ok for r in self.results):
            return False
        # A gate that tested nothing has not passed; an empty shard (more shards than
        # interpreters) is fine, its siblings carry the work.
        return bool(self.results) or self.shard is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": KIND,
            "format": FORMAT,
            "shard": shard_text(self.shard),
            "ok": self.ok,
            "elapsed": self.elapsed,
            "notes": self.notes,
            "problems": self.problems,
            "interpreters": [r.to_dict() for r in self.results],
        }

    def write_json(self, path: str) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w") as f:
            json.dump(self.to_dict(), f, indent=2)
            f.write("\n")


def shard_text(shard: Optional[tuple[int, int]]) -> Optional[str]:
    return None if shard is None else f"{shard[0]}/{shard[1]}"


def load(path: str) -> MatrixResult:
    """Read a matrix JSON; ValueError with one line when it is not one."""
    try:
        with open(path) as f:
            raw = json.load(f)
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise ValueError(f"{path}: not JSON ({exc})") from None
    if not isinstance(raw, dict) or raw.get("kind") != KIND:
        raise ValueError(f"{path}: not a teardown-audit matrix result")
    try:
        shard = raw.get("shard")
        return MatrixResult(
            results=[InterpreterResult.from_dict(r) for r in raw["interpreters"]],
            notes=list(raw.get("notes", [])),
            shard=None if shard is None else _shard(shard),
            elapsed=float(raw.get("elapsed", 0.0)),
            problems=list(raw.get("problems", [])),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: malformed matrix result ({exc})") from None


def _shard(text: str) -> tuple[int, int]:
    i, _, n = text.partition("/")
    return int(i), int(n)


def merge(parts: Sequence[tuple[str, MatrixResult]]) -> MatrixResult:
    """One result from the results of shards of one split (`--shard i/n`, all n the same), or
    of separate runs without --shard (CI jobs, one interpreter each). Inconsistent input
    (mixed kinds, different n, a shard or an interpreter twice) is a ValueError; a missing
    shard makes the merged result fail."""
    if not parts:
        raise ValueError("nothing to merge")
    counts = {m.shard[1] if m.shard else None for _, m in parts}
    if len(counts) != 1:
        raise ValueError("merge needs shard results of one split (i/n with the same n)")
    (count,) = counts
    merged = MatrixResult()
    seen_shards: dict[int, str] = {}
    seen_interps: dict[str, str] = {}
    for path, part in parts:
        if part.shard is not None:
            index = part.shard[0]
            if index in seen_shards:
                raise ValueError(f"shard {index}/{count} given twice: {seen_shards[index]}, {path}")
            seen_shards[index] = path
        for r in part.results:
            key = r.interp.executable
            if key in seen_interps:
                raise ValueError(f"{r.interp.label} appears in {seen_interps[key]} and {path}")
            seen_interps[key] = path
            merged.results.append(r)
        merged.notes += [n for n in part.notes if n not in merged.notes]
        merged.problems += part.problems
        merged.elapsed = max(merged.elapsed, part.elapsed)  # shards run side by side
    missing = [i for i in range(1, (count or 0) + 1) if i not in seen_shards]
    if missing:
        merged.problems.append(
            "missing shard result(s): " + ", ".join(f"{i}/{count}" for i in missing)
        )
    merged.results.sort(key=lambda r: (r.interp.minor, r.interp.abiflags, r.interp.version_key))
    return merged
