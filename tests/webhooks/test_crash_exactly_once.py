"""Webhooks survive a crash: SIGKILL the gateway in the middle of deliveries, restart it on the same SQLite file,
redeliver every event (as Stripe does for each delivery that got no 2xx; here simply all of them, some twice), and
every event is applied exactly once, none lost.

The gateway is the real `gateway serve` process (no emulator, no Stripe call: only webhooks are sent to it). The
first process is killed with SIGKILL as soon as `KILL_AFTER` deliveries were acknowledged, while up to
`CONCURRENCY - 1` others are in flight and the rest not yet sent. Then:

- before the restart, the store holds every acknowledged event, applied (a 2xx is only ever sent for an event
  durably recorded), and not all events (so the kill really came mid-way);
- a second process on the same file answers 200 to every delivery, applies exactly the events the first one had not,
  and reports the others as duplicates;
- in the end every event is `applied`, every order `succeeded`, and each order's audit trail holds exactly one
  `webhook.payment_intent.succeeded` line: no event was applied twice, none was lost.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import aiohttp

from gateway.store import AuditEntry, NewOrder, OrderUpdate, PaymentIntentRecord, PaymentStatus
from gateway.store.models import WebhookEventStatus
from gateway.store.sqlite import SqliteStore
from gateway.webhooks.signature import sign

REPO: Final = Path(__file__).resolve().parents[2]
GATEWAY: Final = Path(sys.executable).parent / "gateway"
WEBHOOK_SECRET: Final = "whsec_test_crash_exactly_once_5f2b9c"
EVENT_TYPE: Final = "payment_intent.succeeded"
AUDIT_ACTION: Final = f"webhook.{EVENT_TYPE}"

ORDERS: Final = 150
"""One order, one PaymentIntent and one `payment_intent.succeeded` event each."""
CONCURRENCY: Final = 32
"""Deliveries in flight at once (Stripe delivers concurrently too)."""
KILL_AFTER: Final = 40
"""The first process is killed as soon as this many deliveries were answered 200."""
REDELIVERED_TWICE: Final = 10
"""Events delivered twice (concurrently with each other and everything else) to the restarted process."""
AMOUNT: Final = 2500

READY_TIMEOUT_S: Final = 20.0
STOP_TIMEOUT_S: Final = 20.0
REQUEST_TIMEOUT_S: Final = 20.0
"""Bounds for a hang, never waits: the test polls the process's output and the responses."""


@dataclass(frozen=True)
class Event:
    order_id: str
    intent_id: str
    event_id: str
    body: bytes


@dataclass(frozen=True)
class Delivery:
    event_id: str
    status: int | None
    """The HTTP status, or None when no answer came (connection refused, reset, or closed by the kill)."""
    outcome: str | None = None
    """The gateway's `outcome` on a 200: `applied`, `duplicate` or `ignored`."""


@dataclass
class FirstRun:
    deliveries: list[Delivery] = field(default_factory=list)
    in_flight_at_kill: int | None = None
    """Deliveries sent and not yet answered when the SIGKILL was sent."""

    @property
    def acknowledged(self) -> set[str]:
        return {delivery.event_id for delivery in self.deliveries if delivery.status == 200}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Gateway:
    """`gateway serve` as its own process. Its output is read up to `gateway_listening` (a blocking read with a
    deadline: no sleep), then drained by a thread so that the pipe never fills and blocks the gateway's logging."""

    def __init__(self, env: dict[str, str], cwd: Path, port: int) -> None:
        self.port = port
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [str(GATEWAY), "serve", "--port", str(port)],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._drain: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks/stripe"

    def wait_listening(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            line = stdout.readline()
            if not line:
                break
            self.lines.append(line)
            if "gateway_listening" in line:
                self._drain = threading.Thread(target=self._read_rest, daemon=True)
                self._drain.start()
                return
        self.process.kill()
        raise AssertionError(f"gateway_listening never appeared; output: {''.join(self.lines)}")

    def _read_rest(self) -> None:
        assert self.process.stdout is not None
        self.lines.extend(self.process.stdout)

    def kill(self) -> None:
        """SIGKILL: no cleanup, no graceful shutdown, nothing flushed by the process itself."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)

    def finish(self, sig: signal.Signals) -> int:
        """Send `sig` (if still running), reap the process and its output; returns its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        if self._drain is not None:
            self._drain.join(timeout=STOP_TIMEOUT_S)
        assert self.process.stdout is not None
        self.process.stdout.close()
        return code

    def output(self) -> str:
        return "".join(self.lines)


def gateway_env(database: Path) -> dict[str, str]:
    """None of the caller's gateway settings; a test Stripe key (so no emulator starts, and no Stripe call is made:
    only webhooks are sent), the webhook secret and the database file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "STRIPE_", "NODE_ENV"))}
    env.update(
        PYTHONPATH=str(REPO),
        DATABASE_URL=f"sqlite:///{database.resolve()}",  # sqlite:////abs/path
        STRIPE_SECRET_KEY="sk_test_dummy",
        STRIPE_PUBLISHABLE_KEY="pk_test_dummy",
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
    )
    return env


async def seed_orders(database: Path) -> list[Event]:
    """ORDERS orders, each waiting for its payment on its own PaymentIntent, as createPaymentIntent leaves them; and
    the event Stripe sends once each is paid."""
    store = await SqliteStore.open(database)
    events: list[Event] = []
    created = int(time.time())
    try:
        for n in range(1, ORDERS + 1):
            order_id, intent_id, event_id = f"order-{n:04d}", f"pi_crash_{n:04d}", f"evt_crash_{n:04d}"
            order, _ = await store.create_order(
                NewOrder(order_id=order_id, amount=AMOUNT, currency="eur", nonce=f"nonce{n:04d}"),
                AuditEntry(action="order.created", actor="test", request_id=None, order_id=order_id),
            )
            await store.update_order(
                order_id,
                order.version,
                OrderUpdate(payment_intent_id=intent_id, status=PaymentStatus.REQUIRES_PAYMENT_METHOD),
                AuditEntry(action="payment_intent.created", actor="test", request_id=None, order_id=order_id),
                PaymentIntentRecord(
                    id=intent_id,
                    order_id=order_id,
                    attempt=1,
                    amount=AMOUNT,
                    currency="eur",
                    status=PaymentStatus.REQUIRES_PAYMENT_METHOD.value,
                    created_at="",
                    updated_at="",
                ),
            )
            body = {
                "id": event_id,
                "object": "event",
                "type": EVENT_TYPE,
                "created": created,
                "livemode": False,
                "data": {
                    "object": {
                        "id": intent_id,
                        "object": "payment_intent",
                        "amount": AMOUNT,
                        "amount_received": AMOUNT,
                        "currency": "eur",
                        "status": "succeeded",
                        "metadata": {"order_id": order_id},
                    }
                },
            }
            # Pretty-printed, as Stripe sends it: the signature covers these exact bytes.
            events.append(Event(order_id, intent_id, event_id, json.dumps(body, indent=2).encode()))
    finally:
        await store.close()
    return events


async def deliver(http: aiohttp.ClientSession, url: str, event: Event) -> Delivery:
    """One delivery, signed now as Stripe signs each attempt. No answer (the process is gone) is a delivery that
    got no 2xx, which Stripe retries: not an error of the test."""
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Stripe-Signature": sign(event.body, WEBHOOK_SECRET, int(time.time())),
    }
    try:
        async with http.post(url, data=event.body, headers=headers) as response:
            payload = await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError):
        return Delivery(event.event_id, None)
    outcome = json.loads(payload).get("outcome") if status == 200 else None
    return Delivery(event.event_id, status, outcome)


async def deliver_until_killed(gateway: Gateway, events: list[Event]) -> FirstRun:
    """Deliver every event, CONCURRENCY at a time; SIGKILL the gateway once KILL_AFTER were answered 200."""
    run = FirstRun()
    semaphore = asyncio.Semaphore(CONCURRENCY)
    in_flight = 0

    async def one(http: aiohttp.ClientSession, event: Event) -> None:
        nonlocal in_flight
        async with semaphore:
            in_flight += 1
            try:
                delivery = await deliver(http, gateway.url, event)
            finally:
                in_flight -= 1
            run.deliveries.append(delivery)
            if run.in_flight_at_kill is None and len(run.acknowledged) >= KILL_AFTER:
                run.in_flight_at_kill = in_flight
                gateway.kill()

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)) as http:
        await asyncio.gather(*(one(http, event) for event in events))
    return run


async def deliver_all(url: str, events: Iterable[Event]) -> list[Delivery]:
    semaphore = asyncio.Semaphore(CONCURRENCY)

    async def one(http: aiohttp.ClientSession, event: Event) -> Delivery:
        async with semaphore:
            return await deliver(http, url, event)

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)) as http:
        return await asyncio.gather(*(one(http, event) for event in events))


async def test_sigkill_mid_delivery_then_redelivery_applies_every_event_exactly_once(tmp_path: Path) -> None:
    database = tmp_path / "gateway.sqlite3"
    events = await seed_orders(database)
    by_id = {event.event_id: event for event in events}
    env = gateway_env(database)
    port = free_port()

    # -- first process: killed mid-way ----------------------------------------------------------------------
    first = Gateway(env, tmp_path, port)
    try:
        await asyncio.to_thread(first.wait_listening)
        first_run = await deliver_until_killed(first, events)
    finally:
        first_code = first.finish(signal.SIGKILL)
    assert first_code == -signal.SIGKILL, first.output()
    acknowledged = first_run.acknowledged
    assert len(acknowledged) >= KILL_AFTER
    assert first_run.in_flight_at_kill is not None
    assert first_run.in_flight_at_kill > 0, "nothing was in flight when the process was killed"
    unanswered = [delivery for delivery in first_run.deliveries if delivery.status is None]
    assert unanswered, "every delivery was answered: the kill came too late"
    assert all(delivery.status in (200, None) for delivery in first_run.deliveries), first_run.deliveries

    # -- the file as the crash left it --------------------------------------------------------------------
    store = await SqliteStore.open(database)
    try:
        after_kill = {event.id: event for event in await store.list_webhook_events(limit=10 * ORDERS)}
    finally:
        await store.close()
    applied_before_restart = {
        event_id for event_id, event in after_kill.items() if event.status is WebhookEventStatus.APPLIED
    }
    assert set(after_kill) <= set(by_id)
    # Nothing acknowledged was lost: a 200 is only sent for an event durably recorded (and here, applied).
    assert acknowledged <= applied_before_restart, sorted(acknowledged - applied_before_restart)
    # The kill came mid-way: some events were recorded, not all were applied.
    assert len(after_kill) >= KILL_AFTER
    assert len(applied_before_restart) < ORDERS
    assert {event.status for event in after_kill.values()} <= {
        WebhookEventStatus.APPLIED,
        WebhookEventStatus.RECEIVED,  # recorded, then killed before applying it: the redelivery applies it
    }

    # -- second process on the same file: every event redelivered, some twice --------------------------------
    # Spread over the events: some applied before the kill, some left `received`, some never delivered.
    redeliveries = [*events, *events[:: ORDERS // REDELIVERED_TWICE]]
    random.Random(20240115).shuffle(redeliveries)
    second = Gateway(env, tmp_path, port)  # the same URL, as Stripe knows only that one
    try:
        await asyncio.to_thread(second.wait_listening)
        second_run = await deliver_all(second.url, redeliveries)
    finally:
        second_code = second.finish(signal.SIGTERM)
    assert second_code == 0, second.output()
    assert [delivery.status for delivery in second_run] == [200] * len(redeliveries), second.output()
    applied_now = Counter(delivery.event_id for delivery in second_run if delivery.outcome == "applied")
    # Exactly the events the first process had not applied are applied now, each by one delivery only; every
    # other delivery finds its event already applied.
    assert set(applied_now) == set(by_id) - applied_before_restart
    assert set(applied_now.values()) <= {1}
    assert Counter(delivery.outcome for delivery in second_run) == {
        "applied": ORDERS - len(applied_before_restart),
        "duplicate": len(redeliveries) - (ORDERS - len(applied_before_restart)),
    }

    # -- the end state ------------------------------------------------------------------------------------------
    store = await SqliteStore.open(database)
    try:
        stored_events = {event.id: event for event in await store.list_webhook_events(limit=10 * ORDERS)}
        orders = {event.order_id: await store.get_order(event.order_id) for event in events}
        audit = await store.list_audit(limit=100 * ORDERS)
    finally:
        await store.close()
    assert set(stored_events) == set(by_id)
    assert {event.status for event in stored_events.values()} == {WebhookEventStatus.APPLIED}
    for event_id, stored in stored_events.items():
        assert stored.order_id == by_id[event_id].order_id
        assert stored.payload == by_id[event_id].body
        assert stored.deliveries >= 1
    redelivered = Counter(event.event_id for event in redeliveries)
    attempted_first = Counter(delivery.event_id for delivery in first_run.deliveries)
    for event_id, stored in stored_events.items():
        # Every delivery answered 200 was counted; none was counted that was not sent.
        at_least = redelivered[event_id] + (event_id in acknowledged)
        at_most = redelivered[event_id] + attempted_first[event_id]
        assert at_least <= stored.deliveries <= at_most, (event_id, stored.deliveries)
    for event in events:
        order = orders[event.order_id]
        assert order is not None
        assert (order.status, order.amount_received, order.payment_intent_id) == (
            PaymentStatus.SUCCEEDED,
            AMOUNT,
            event.intent_id,
        )
    applications = Counter(entry.order_id for entry in audit if entry.action == AUDIT_ACTION)
    assert applications == Counter(event.order_id for event in events)  # exactly one per order
    assert {entry.request_id: entry.order_id for entry in audit if entry.action == AUDIT_ACTION} == {
        event.event_id: event.order_id for event in events
    }
