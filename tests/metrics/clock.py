"""A wall clock that moves only when a test says so (metrics read `time.time()` through it)."""

from __future__ import annotations

START = 1_705_312_200.0  # 2024-01-15T09:50:00Z, the seed's example day


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now
