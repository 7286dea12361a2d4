"""Waiting for something a server does in its own time: poll, never a fixed sleep, and fail after a deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["eventually"]

T = TypeVar("T")
POLL_SECONDS = 0.05


async def eventually(check: Callable[[], Awaitable[T | None]], what: str, deadline_seconds: float) -> T:
    """Poll `check` until it returns something truthy (returned), failing after `deadline_seconds`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_seconds
    while True:
        value = await check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(POLL_SECONDS)  # the polling interval, bounded by the deadline
