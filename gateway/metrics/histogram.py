"""A histogram that answers both questions asked of it: Prometheus's cumulative buckets at fixed bounds, and
percentiles (p50/p95/p99) for the JSON endpoints, from fine log-spaced buckets (each 10 % wider than the last, so a
percentile is off by at most 10 %).

Observing is on the hot path (every request and every call of a batch), reading is not: so an observation only
appends the value to a buffer, and values are put in their buckets a thousand at a time, sorted once, each bucket
counted by one binary search into them: less than half the instructions of two binary searches and four updates
per value (`bench/instructions.py`). A reader (or a full buffer) folds the buffer first, so every figure read is
exact.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from typing import Final

__all__ = ["FINE_BOUNDS", "Histogram"]

_FINE_START: Final = 0.0001
_FINE_FACTOR: Final = 1.1
FINE_BOUNDS: Final = tuple(
    _FINE_START * _FINE_FACTOR**i for i in range(int(math.log(4e9) / math.log(_FINE_FACTOR)) + 2)
)
"""Upper bounds from 100 µs to beyond four days (webhook lag: Stripe retries for three), then +Inf: 234 buckets."""
FOLD_EVERY: Final = 1024
"""Values kept unbucketed at most (as float objects: a list sorts and sums faster than an `array('d')`, which
makes a float object of each value again; 2 % of a batch's instructions. At most ~32 KiB per histogram, and only
the current minute's hold any: `Metrics` folds a minute's histograms when the next begins)."""


def _add_sorted(counts: list[int], bounds: Sequence[float], values: list[float]) -> None:
    """Count sorted `values` into `counts`, one per bound (`value <= bound`, as Prometheus's `le`) and +Inf."""
    below = 0
    for i, bound in enumerate(bounds):
        upto = bisect_right(values, bound, below)
        if upto != below:
            counts[i] += upto - below
            below = upto
        if below == len(values):
            return
    counts[-1] += len(values) - below


class Histogram:
    """Observations of one series. Not thread-safe: the event loop owns it."""

    __slots__ = ("_count", "_max", "_pending", "_sum", "bounds", "counts", "fine")

    def __init__(self, bounds: Sequence[float] = ()) -> None:
        self.bounds = tuple(bounds)
        """Prometheus's `le` bounds (+Inf implied)."""
        self._pending: list[float] = []
        """Observed values not yet in `counts`, `fine` and the totals."""
        self.counts = [0] * (len(self.bounds) + 1)
        """Observations per bound (not cumulative); the last is above every bound. Read after `fold()`."""
        self.fine = [0] * (len(FINE_BOUNDS) + 1)
        self._count = 0
        self._sum = 0.0
        self._max = 0.0

    def observe(self, value: float) -> None:
        pending = self._pending
        pending.append(value)
        if len(pending) >= FOLD_EVERY:
            self.fold()

    def observe_all(self, values: Sequence[float]) -> None:
        pending = self._pending
        pending.extend(values)
        if len(pending) >= FOLD_EVERY:
            self.fold()

    def fold(self) -> None:
        """Put the buffered values in their buckets and totals (every reader does it first)."""
        pending = self._pending
        if not pending:
            return
        total = sum(pending)  # never raises: an overflow is inf, as adding one by one gave
        if total == total:
            values = sorted(pending)
        else:  # a NaN among them (no duration is one): it would unsort the rest, so it is left out
            values = sorted(value for value in pending if value == value)
            total = sum(values)
        del pending[:]  # first: nothing below can raise, but a value must never be counted twice
        if not values:
            return
        _add_sorted(self.counts, self.bounds, values)
        _add_sorted(self.fine, FINE_BOUNDS, values)
        self._count += len(values)
        self._sum += total
        self._max = max(self._max, values[-1])

    @property
    def unfolded(self) -> int:
        """Observations still in the buffer (what it holds in memory beyond its buckets)."""
        return len(self._pending)

    @property
    def count(self) -> int:
        self.fold()
        return self._count

    @property
    def sum(self) -> float:
        self.fold()
        return self._sum

    @property
    def max(self) -> float:
        self.fold()
        return self._max

    def merge(self, other: Histogram, *, fine: bool = True) -> None:
        """Add `other`'s observations (same bounds) to this one; without `fine`, not its fine buckets (so no
        percentiles from the result: what Prometheus needs costs a fraction of it)."""
        if other.bounds != self.bounds:
            raise ValueError(
                f"cannot merge a histogram with bounds {other.bounds} into one with {self.bounds}"
            )
        self.fold()
        other.fold()
        for i, n in enumerate(other.counts):
            self.counts[i] += n
        if fine:
            for i, n in enumerate(other.fine):
                if n:
                    self.fine[i] += n
        self._count += other._count
        self._sum += other._sum
        self._max = max(self._max, other._max)

    def cumulative(self) -> list[tuple[float, int]]:
        """(`le`, observations at or below it) for each bound and +Inf, as Prometheus exposes them."""
        self.fold()
        result, total = [], 0
        for bound, n in zip((*self.bounds, math.inf), self.counts, strict=True):
            total += n
            result.append((bound, total))
        return result

    def quantile(self, q: float) -> float | None:
        """The value below which a fraction `q` of observations fall (the upper bound of its fine bucket, never
        above the largest observation); None without observations."""
        count = self.count  # folds the buffer
        if count == 0:
            return None
        rank = max(1, math.ceil(q * count))
        seen = 0
        for i, n in enumerate(self.fine):
            seen += n
            if seen >= rank:
                return min(FINE_BOUNDS[i], self.max) if i < len(FINE_BOUNDS) else self.max
        return self.max  # pragma: no cover - the counts add up to `count`

    def mean(self) -> float | None:
        return self.sum / self.count if self.count else None
