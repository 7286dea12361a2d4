"""Per-process limits on requests in handlers: how many at once (GATEWAY_MAX_CONCURRENT_REQUESTS) and for how long
(GATEWAY_HANDLER_TIMEOUT); and the body read within GATEWAY_BODY_TIMEOUT.

The request observer admits each request of a limited route into `InFlight` (one dict entry) and releases it when
its handler returns. Past the cap a request is refused at once (503) rather than queued: a queue would only turn
overload into timeouts for everybody. Deadlines are enforced by one sweep per process, not one timer per request
(an `asyncio.timeout` per request costs a timer-heap push and pop on the hot path); the sweep runs only while
requests are in flight, so a request is cancelled between its deadline and a quarter of the timeout (at most 1 s)
after it.
"""

from __future__ import annotations

import asyncio
import math
from typing import Final

from aiohttp import web

__all__ = ["WAITED_BODY_BYTES", "InFlight", "body_arrived", "read_body"]

_EXPIRED: Final = math.inf
"""The deadline of a request the sweep has cancelled (never due again)."""
_MAX_SWEEP_SECONDS: Final = 1.0
WAITED_BODY_BYTES: Final = 64 * 1024
"""Bodies up to this size (every tRPC, JSON-RPC and webhook body in practice) are waited for before the request
counts against the cap; aiohttp buffers that much without anyone reading (it pauses a connection at 128 KiB)."""


class InFlight:
    """The requests now in handlers (their tasks), each with its deadline."""

    def __init__(self, limit: int, timeout: float) -> None:
        self.limit = limit
        self.timeout = timeout
        self._deadlines: dict[asyncio.Task[object], float] = {}
        self._sweep_every = min(timeout / 4, _MAX_SWEEP_SECONDS)
        self._sweep: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._deadlines)

    def admit(self, task: asyncio.Task[object]) -> bool:
        """Count `task` in, with its deadline; False (not counted) when `limit` requests are in already."""
        deadlines = self._deadlines
        if len(deadlines) >= self.limit:
            return False
        loop = task.get_loop()
        deadlines[task] = loop.time() + self.timeout
        if self._sweep is None:
            self._sweep = loop.call_later(self._sweep_every, self._cancel_overdue, loop)
        return True

    def release(self, task: asyncio.Task[object]) -> bool:
        """Count `task` out; True if its deadline passed and it was cancelled for it.

        A cancellation the sweep sent is taken back (`uncancel`), so that the request can still be answered; the
        caller answers it as timed out whether or not the handler let the CancelledError through.
        """
        if self._deadlines.pop(task) != _EXPIRED:
            return False
        task.uncancel()
        return True

    def _cancel_overdue(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        overdue = [task for task, deadline in self._deadlines.items() if deadline <= now]
        for task in overdue:
            self._deadlines[task] = _EXPIRED
            task.cancel("handler timeout")
        self._sweep = (
            loop.call_later(self._sweep_every, self._cancel_overdue, loop) if self._deadlines else None
        )


async def read_body(request: web.Request, seconds: float) -> bytes:
    """The request's body, if the client sends all of it within `seconds` (TimeoutError otherwise).

    A body that arrived with the headers (nearly every tRPC call) is read without arming a timer.
    """
    if request.content.is_eof():
        return await request.read()
    async with asyncio.timeout(seconds):
        return await request.read()


async def body_arrived(request: web.Request, seconds: float, max_bytes: int) -> bool:
    """Wait, without reading it, until a POST body of up to WAITED_BODY_BYTES has arrived whole; False when it has not
    within `seconds`. So a client trickling its body in holds a connection, not one of the slots of the
    concurrency cap that every other client needs. Larger or chunked bodies are not waited for (they count while
    they arrive, for at most GATEWAY_BODY_TIMEOUT, as the routes read them)."""
    if request.method != "POST" or not request.body_exists or request.content.is_eof():
        return True  # the routes read POST bodies only (a GET's is never waited for)
    length = request.content_length
    if (
        length is None
        or length > min(WAITED_BODY_BYTES, max_bytes)
        or request.content.exception() is not None
    ):
        return True  # not waited for, refused unread by the route (over `max_bytes`), or already broken off
    try:
        async with asyncio.timeout(seconds):
            await request.content.wait_eof()
    except TimeoutError:
        return False
    except Exception:
        return True
    return True
