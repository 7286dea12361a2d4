"""A histogram that answers both questions asked of it: Prometheus's cumulative buckets at fixed bounds, and
percentiles (p50/p95/p99) for the JSON endpoints, from fine log-spaced buckets (each 10 % wider than the last, so a
percentile is off by at most 10 %)."""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Final

__all__ = ["FINE_BOUNDS", "Histogram"]

_FINE_START: Final = 0.0001
_FINE_FACTOR: Final = 1.1
FINE_BOUNDS: Final = tuple(
    _FINE_START * _FINE_FACTOR**i for i in range(int(math.log(4e9) / math.log(_FINE_FACTOR)) + 2)
)
"""Upper bounds from 100 µs to beyond four days (webhook lag: Stripe retries for three), then +Inf: 234 buckets."""


class Histogram:
    """Observations of one series. Not thread-safe: the event loop owns it."""

    __slots__ = ("bounds", "count", "counts", "fine", "max", "sum")

    def __init__(self, bounds: Sequence[float] = ()) -> None:
        self.bounds = tuple(bounds)
        """Prometheus's `le` bounds (+Inf implied)."""
        self.counts = [0] * (len(self.bounds) + 1)
        """Observations per bound (not cumulative); the last is above every bound."""
        self.fine = [0] * (len(FINE_BOUNDS) + 1)
        self.count = 0
        self.sum = 0.0
        self.max = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.fine[bisect.bisect_left(FINE_BOUNDS, value)] += 1
        self.count += 1
        self.sum += value
        if value > self.max:
            self.max = value

    def merge(self, other: Histogram, *, fine: bool = True) -> None:
        """Add `other`'s observations (same bounds) to this one; without `fine`, not its fine buckets (so no
        percentiles from the result: what Prometheus needs costs a fraction of it)."""
        if other.bounds != self.bounds:
            raise ValueError(
                f"cannot merge a histogram with bounds {other.bounds} into one with {self.bounds}"
            )
        for i, n in enumerate(other.counts):
            self.counts[i] += n
        if fine:
            for i, n in enumerate(other.fine):
                if n:
                    self.fine[i] += n
        self.count += other.count
        self.sum += other.sum
        self.max = max(self.max, other.max)

    def cumulative(self) -> list[tuple[float, int]]:
        """(`le`, observations at or below it) for each bound and +Inf, as Prometheus exposes them."""
        result, total = [], 0
        for bound, n in zip((*self.bounds, math.inf), self.counts, strict=True):
            total += n
            result.append((bound, total))
        return result

    def quantile(self, q: float) -> float | None:
        """The value below which a fraction `q` of observations fall (the upper bound of its fine bucket, never
        above the largest observation); None without observations."""
        if self.count == 0:
            return None
        rank = max(1, math.ceil(q * self.count))
        seen = 0
        for i, n in enumerate(self.fine):
            seen += n
            if seen >= rank:
                return min(FINE_BOUNDS[i], self.max) if i < len(FINE_BOUNDS) else self.max
        return self.max  # pragma: no cover - the counts add up to `count`

    def mean(self) -> float | None:
        return self.sum / self.count if self.count else None
