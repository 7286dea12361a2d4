"""Stripe's side of webhook delivery, for tests that need more of it than the emulator does.

The emulator delivers each event once, about a second after it happens, and never retries. Registered as the
emulator's webhook URL, a `WebhookRelay` (an aiohttp server on 127.0.0.1 in the test's event loop) takes each
signed delivery, keeps it (`deliveries`: the exact bytes and `Stripe-Signature` Stripe sent), and, when given a
`target`, delivers it there as Stripe does: again after any answer that is not 2xx or any connection failure,
until it is acknowledged or the deadline passes. Every attempt's outcome is kept (`attempts`), so a test can say
which deliveries the gateway acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Final

import aiohttp
import msgspec
from aiohttp import web

__all__ = ["Attempt", "Delivery", "WebhookRelay", "webhook_relay"]

RETRY_SECONDS: Final = 0.2
"""Between two deliveries of one event (Stripe waits minutes; the tests cannot)."""
DELIVERY_DEADLINE_SECONDS: Final = 30.0
SIGNATURE_HEADER: Final = "Stripe-Signature"


@dataclass(frozen=True)
class Delivery:
    event_id: str
    event_type: str
    body: bytes
    signature: str

    def headers(self) -> dict[str, str]:
        return {SIGNATURE_HEADER: self.signature, "Content-Type": "application/json"}


@dataclass(frozen=True)
class Attempt:
    event_id: str
    status: int | None
    """The HTTP status, or None when the connection failed."""
    outcome: str | None
    """The gateway's `outcome` (applied, duplicate, ignored) on a 200."""

    @property
    def acknowledged(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class _EventHead(msgspec.Struct):
    id: str
    type: str


class _Answer(msgspec.Struct):
    outcome: str | None = None


@dataclass
class WebhookRelay:
    url: str
    """Where the emulator delivers (register it with `StripeEmulator.register_webhook`)."""
    target: str | None
    deliveries: list[Delivery] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    _forwarding: set[asyncio.Task[None]] = field(default_factory=set)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _session: aiohttp.ClientSession | None = None
    _pending: dict[int, float] = field(default_factory=dict)
    """Attempts under way: when each was sent (loop time)."""

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        head = msgspec.json.decode(body, type=_EventHead)
        delivery = Delivery(head.id, head.type, body, request.headers.get(SIGNATURE_HEADER, ""))
        self.deliveries.append(delivery)
        self._arrived.set()
        if self.target is not None:
            task = asyncio.create_task(self._forward(delivery))
            self._forwarding.add(task)
            task.add_done_callback(self._forwarding.discard)
        return web.json_response({"received": True})

    async def _forward(self, delivery: Delivery) -> None:
        assert self.target is not None
        assert self._session is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DELIVERY_DEADLINE_SECONDS
        while True:
            attempt = await self._attempt(delivery)
            self.attempts.append(attempt)
            if attempt.acknowledged or loop.time() > deadline:
                return
            await asyncio.sleep(RETRY_SECONDS)  # Stripe's back-off, shortened; bounded by the deadline

    def pending_longer_than(self, seconds: float) -> int:
        """How many deliveries have been waiting for the target's answer for more than `seconds`."""
        now = asyncio.get_running_loop().time()
        return sum(1 for since in self._pending.values() if now - since > seconds)

    async def _attempt(self, delivery: Delivery) -> Attempt:
        key = id(asyncio.current_task())
        self._pending[key] = asyncio.get_running_loop().time()
        try:
            return await self._attempt_once(delivery)
        finally:
            del self._pending[key]

    async def _attempt_once(self, delivery: Delivery) -> Attempt:
        assert self.target is not None
        assert self._session is not None
        try:
            async with self._session.post(
                self.target, data=delivery.body, headers=delivery.headers()
            ) as answer:
                text = await answer.read()
                outcome = None
                if answer.status == 200:
                    with contextlib.suppress(msgspec.DecodeError):
                        outcome = msgspec.json.decode(text, type=_Answer).outcome
                return Attempt(delivery.event_id, answer.status, outcome)
        except (aiohttp.ClientError, TimeoutError):
            return Attempt(delivery.event_id, None, None)

    async def wait_for(self, count: int) -> list[Delivery]:
        """The first `count` deliveries, once the emulator has made them (failing after the deadline)."""
        async with asyncio.timeout(DELIVERY_DEADLINE_SECONDS):
            while len(self.deliveries) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.deliveries[:count]

    async def settled(self) -> None:
        """Once every delivery received so far has been acknowledged by the target or given up."""
        while self._forwarding:
            await asyncio.gather(*self._forwarding)

    def acknowledged_event_ids(self) -> set[str]:
        return {attempt.event_id for attempt in self.attempts if attempt.acknowledged}


@contextlib.asynccontextmanager
async def webhook_relay(target: str | None = None) -> AsyncIterator[WebhookRelay]:
    """A relay on a free 127.0.0.1 port: it keeps what the emulator delivers and, with `target`, delivers it there
    with Stripe's retries."""
    app = web.Application()
    relay_holder: list[WebhookRelay] = []

    async def receive(request: web.Request) -> web.Response:
        return await relay_holder[0]._receive(request)

    app.router.add_post("/", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    port = listening.getsockname()[1]
    await web.SockSite(runner, listening).start()
    timeout = aiohttp.ClientTimeout(total=20)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        relay = WebhookRelay(f"http://127.0.0.1:{port}/", target, _session=session)
        relay_holder.append(relay)
        try:
            yield relay
        finally:
            for task in list(relay._forwarding):
                task.cancel()
            await asyncio.gather(*relay._forwarding, return_exceptions=True)
            await runner.cleanup()
