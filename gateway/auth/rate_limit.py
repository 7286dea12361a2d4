"""Per-key token buckets for mutations: `limit` calls per minute, refilled smoothly, a burst of `limit`.

Per process: with several replicas, each allows the limit (documented in the README). Memory is bounded: when
there are too many keys, the buckets that are full again (idle callers) are dropped first.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Final

__all__ = ["MAX_KEYS", "RateLimiter", "retry_after_header"]

MAX_KEYS: Final = 100_000


class RateLimiter:
    """`take(key)` spends one call; None when allowed, else the seconds until the next call would be."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._rate = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        """key -> (tokens left, when they were counted)."""

    def __len__(self) -> int:
        """How many callers are remembered."""
        return len(self._buckets)

    def wait(self, key: str) -> float | None:
        """Like `take`, without spending: None when a call would be allowed now, else the seconds until it is."""
        if self.per_minute <= 0:
            return None
        bucket = self._buckets.get(key)
        if bucket is None:
            return None
        tokens = min(float(self.per_minute), bucket[0] + (self._clock() - bucket[1]) * self._rate)
        return None if tokens >= 1.0 else (1.0 - tokens) / self._rate

    def take(self, key: str) -> float | None:
        if self.per_minute <= 0:
            return None
        now = self._clock()
        tokens, then = self._buckets.get(key, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - then) * self._rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self._rate
        if len(self._buckets) >= MAX_KEYS and key not in self._buckets:
            self._prune(now)
        self._buckets[key] = (tokens - 1.0, now)
        return None

    def _prune(self, now: float) -> None:
        """Forget buckets that have refilled (nothing to remember); if none has, the oldest half."""
        full = [
            key
            for key, (tokens, then) in self._buckets.items()
            if tokens + (now - then) * self._rate >= self.per_minute
        ]
        if not full:
            by_age = sorted(self._buckets, key=lambda key: self._buckets[key][1])
            full = by_age[: len(by_age) // 2]
        for key in full:
            del self._buckets[key]


def retry_after_header(seconds: float) -> str:
    """`Retry-After` in whole seconds, never 0 (a client that retries at once would be refused again)."""
    return str(max(1, math.ceil(seconds)))
