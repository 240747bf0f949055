"""Summaries of timing samples: percentiles and the spread of repeated rounds.

Nearest-rank percentiles on the sorted samples (no interpolation: a p99 is a sample that was
really seen). Everything is in seconds; the report converts units.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def percentile(samples: Sequence[float], q: float) -> float:
    """The nearest-rank q-th percentile (0 < q <= 100) of samples (not empty)."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def latency(samples: Sequence[float]) -> dict[str, float]:
    """p50, p99, min, max and count of one figure's samples."""
    return {
        "p50": percentile(samples, 50),
        "p99": percentile(samples, 99),
        "min": min(samples),
        "max": max(samples),
        "n": float(len(samples)),
    }


def rate(per_round: Sequence[float]) -> dict[str, float]:
    """A rate measured over several rounds: the median, and min..max as the spread."""
    return {
        "median": statistics.median(per_round),
        "min": min(per_round),
        "max": max(per_round),
        "rounds": float(len(per_round)),
    }


def ratio(a: float, b: float) -> float:
    return a / b if b else math.nan
