"""The structured result of one check: what every check returns and every report renders."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

PASS = "pass"
FAIL = "fail"
ERROR = "error"  # the harness could not run the check (not a finding about the target)
SKIP = "skip"  # only when the target lacks a capability the check needs; the reason says which
STATUSES = (PASS, FAIL, ERROR, SKIP)


@dataclass
class Verdict:
    check: str
    status: str
    reason: str  # one line
    evidence: list[str] = field(default_factory=list)  # human-readable lines
    data: dict[str, Any] = field(default_factory=dict)  # the numbers behind the evidence (JSON)
    repro: str | None = None  # a shell command that reproduces the run
    elapsed: float = 0.0

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"verdict status must be one of {STATUSES}, got {self.status!r}")
        # Keep the reason to one line: it goes into tables and JUnit messages.
        self.reason = " ".join(self.reason.split())

    @property
    def ok(self) -> bool:
        return self.status in (PASS, SKIP)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Verdict:
        known = {k: raw[k] for k in cls.__dataclass_fields__ if k in raw}
        return cls(**known)


def passed(check: str, reason: str, **kw: Any) -> Verdict:
    return Verdict(check, PASS, reason, **kw)


def failed(check: str, reason: str, **kw: Any) -> Verdict:
    return Verdict(check, FAIL, reason, **kw)


def errored(check: str, reason: str, **kw: Any) -> Verdict:
    return Verdict(check, ERROR, reason, **kw)


def skipped(check: str, reason: str, **kw: Any) -> Verdict:
    return Verdict(check, SKIP, reason, **kw)
