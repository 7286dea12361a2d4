"""WebhookService on a real SQLite file: recorded then applied exactly once, in any order, never lost."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from loguru import logger

from gateway.settings import Settings
from gateway.store import Order, PaymentStatus, Store, StoreError, WebhookEvent, WebhookEventStatus
from gateway.store.sqlite import SqliteStore
from gateway.webhooks.service import Outcome, WebhookService
from tests.webhooks.events import charge_refunded, intent_event, paid_order, unpaid_order

SETTINGS = Settings(stripe_secret_key="sk_test_x", stripe_webhook_secret="whsec_x")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await SqliteStore.open(tmp_path / "gateway.sqlite3")
    try:
        yield opened
    finally:
        await opened.close()


async def order_of(store: Store, order_id: str = "order-1") -> Order:
    order = await store.get_order(order_id)
    assert order is not None
    return order


async def webhook_audit(store: Store, order_id: str = "order-1") -> list[str]:
    return [entry.action for entry in await store.list_audit(order_id) if entry.actor == "stripe"]


async def test_an_event_is_recorded_with_its_payload_then_applied(store: Store) -> None:
    await unpaid_order(store)
    body = intent_event("evt_1", "succeeded")

    receipt = await WebhookService(store, SETTINGS).receive(body)

    assert (receipt.event_id, receipt.outcome, receipt.order_id) == ("evt_1", Outcome.APPLIED, "order-1")
    order = await order_of(store)
    assert (order.status, order.amount_received, order.last_error) == (PaymentStatus.SUCCEEDED, 2500, None)
    event = await store.get_webhook_event("evt_1")
    assert event is not None
    assert (event.type, event.status, event.order_id, event.deliveries) == (
        "payment_intent.succeeded",
        WebhookEventStatus.APPLIED,
        "order-1",
        1,
    )
    assert event.payload == body  # the raw bytes Stripe signed
    assert event.applied_at is not None
    [entry] = [e for e in await store.list_audit("order-1") if e.actor == "stripe"]
    assert (entry.action, entry.request_id) == ("webhook.payment_intent.succeeded", "evt_1")
    assert entry.details == {
        "paymentIntent": "pi_1",
        "before": "requires_payment_method",
        "after": "succeeded",
    }


async def test_the_same_event_twenty_times_at_once_is_applied_once(store: Store) -> None:
    await unpaid_order(store)
    service = WebhookService(store, SETTINGS)
    body = intent_event("evt_1", "succeeded")

    receipts = await asyncio.gather(*(service.receive(body) for _ in range(20)))

    assert sorted(r.outcome for r in receipts) == [Outcome.APPLIED] + [Outcome.DUPLICATE] * 19
    event = await store.get_webhook_event("evt_1")
    assert event is not None
    assert event.deliveries == 20
    assert await webhook_audit(store) == ["webhook.payment_intent.succeeded"]


SEQUENCE = [
    intent_event("evt_failed", "requires_payment_method", error="insufficient_funds", created=1),
    intent_event("evt_paid", "succeeded", created=2),
    charge_refunded("evt_refund_1", 500, created=3),
    charge_refunded("evt_refund_2", 1500, created=4),
]
"""A card declined, another card paid, then two partial refunds (Stripe's totals are cumulative)."""


@pytest.mark.parametrize("order", list(itertools.permutations(range(len(SEQUENCE)))))
async def test_every_delivery_order_of_a_realistic_sequence_ends_in_the_same_state(
    store: Store, order: tuple[int, ...]
) -> None:
    await unpaid_order(store)
    service = WebhookService(store, SETTINGS)

    for index in order:
        assert (await service.receive(SEQUENCE[index])).outcome is Outcome.APPLIED

    final = await order_of(store)
    assert (final.status, final.amount_received, final.amount_refunded, final.last_error) == (
        PaymentStatus.SUCCEEDED,
        2500,
        1500,
        None,
    )
    events = await store.list_webhook_events(order_id="order-1")
    assert {event.status for event in events} == {WebhookEventStatus.APPLIED}


async def test_a_late_failure_never_undoes_a_payment(store: Store) -> None:
    await unpaid_order(store)
    service = WebhookService(store, SETTINGS)
    await service.receive(intent_event("evt_paid", "succeeded"))

    late = await service.receive(intent_event("evt_failed", "requires_payment_method", error="card_declined"))

    assert late.outcome is Outcome.APPLIED
    assert late.note == "stale: the order is succeeded, the report says requires_payment_method"
    order = await order_of(store)
    assert (order.status, order.last_error) == (PaymentStatus.SUCCEEDED, None)
    assert await webhook_audit(store) == ["webhook.payment_intent.succeeded"]


async def test_a_failure_records_the_decline_and_a_second_failure_updates_it(store: Store) -> None:
    await unpaid_order(store)
    service = WebhookService(store, SETTINGS)
    await service.receive(intent_event("evt_1", "requires_payment_method", error="insufficient_funds"))
    assert (await order_of(store)).last_error == "insufficient_funds: Your card was declined."

    await service.receive(intent_event("evt_2", "requires_payment_method", error="lost_card"))

    order = await order_of(store)
    assert (order.status, order.last_error) == (
        PaymentStatus.REQUIRES_PAYMENT_METHOD,
        "lost_card: Your card was declined.",
    )


async def test_refund_totals_are_stripes_cumulative_amount_not_a_sum_of_deliveries(store: Store) -> None:
    await paid_order(store)
    service = WebhookService(store, SETTINGS)

    for event_id, total in [("evt_a", 500), ("evt_b", 500), ("evt_c", 1200), ("evt_d", 700)]:
        await service.receive(charge_refunded(event_id, total))

    assert (await order_of(store)).amount_refunded == 1200
    notes = [event.note for event in reversed(await store.list_webhook_events(order_id="order-1"))]
    assert notes == [
        "refunded total 0 -> 500",
        "refunded total already 500 (report: 500)",
        "refunded total 500 -> 1200",
        "refunded total already 1200 (report: 700)",
    ]


async def test_a_refund_reported_before_the_payment_still_ends_right(store: Store) -> None:
    await unpaid_order(store)
    service = WebhookService(store, SETTINGS)

    await service.receive(charge_refunded("evt_refund", 2500))
    await service.receive(intent_event("evt_paid", "succeeded"))

    order = await order_of(store)
    assert (order.status, order.amount_received, order.amount_refunded) == (
        PaymentStatus.SUCCEEDED,
        2500,
        2500,
    )


async def test_an_event_about_a_replaced_payment_intent_leaves_the_order_alone(store: Store) -> None:
    await unpaid_order(store, intent_id="pi_2")  # attempt 1's pi_1 was canceled and replaced

    receipt = await WebhookService(store, SETTINGS).receive(
        intent_event("evt_old", "canceled", intent_id="pi_1")
    )

    assert receipt.outcome is Outcome.APPLIED
    assert receipt.note == "about pi_1, not the order's current PaymentIntent: order unchanged"
    assert (await order_of(store)).status is PaymentStatus.REQUIRES_PAYMENT_METHOD


async def test_a_webhook_that_beats_the_gateways_own_write_is_adopted(store: Store) -> None:
    """The crash window of createPaymentIntent: Stripe made the intent, the gateway's write did not happen."""
    await unpaid_order(store, intent_id=None)

    await WebhookService(store, SETTINGS).receive(intent_event("evt_1", "succeeded", intent_id="pi_9"))

    order = await order_of(store)
    assert (order.status, order.payment_intent_id) == (PaymentStatus.SUCCEEDED, "pi_9")
    assert [intent.id for intent in await store.list_payment_intents("order-1")] == ["pi_9"]


@pytest.mark.parametrize(
    ("body", "note"),
    [
        (b"not json at all", "not a Stripe event: JSON is malformed"),
        (
            b'{"id": "evt_1", "type": "payment_intent.succeeded"}',
            "not a Stripe event: Object missing required field",
        ),
        (
            b'{"id": "evt_2", "type": "payment_intent.succeeded", "created": 1, "data": {"object": {"id": "pi_1"}}}',
            "payment_intent.succeeded without a usable PaymentIntent: Object missing required field",
        ),
    ],
)
async def test_a_signed_but_unusable_body_is_recorded_ignored_and_logged(
    store: Store, body: bytes, note: str
) -> None:
    events: list[str] = []
    sink = logger.add(lambda message: events.append(message.record["message"]), level="WARNING")
    try:
        receipt = await WebhookService(store, SETTINGS).receive(body)
    finally:
        logger.remove(sink)

    assert receipt.outcome is Outcome.IGNORED
    assert receipt.note is not None
    assert receipt.note.startswith(note)
    stored = await store.get_webhook_event(receipt.event_id)
    assert stored is not None
    assert (stored.status, stored.payload) == (WebhookEventStatus.IGNORED, body)
    assert "webhook_event_unusable" in events


@pytest.mark.parametrize(
    ("body", "note"),
    [
        (
            intent_event("evt_1", "succeeded", order_id=None, intent_id="pi_other"),
            "not about an order of this gateway",
        ),
        (
            intent_event("evt_2", "succeeded", order_id="someone-else", intent_id="pi_unknown"),
            'order "someone-else" is not in this gateway',
        ),
        (
            # order-1's PaymentIntent, with metadata naming another order: the payment never moves to it
            intent_event("evt_6", "succeeded", order_id="someone-else"),
            "payment_intent.succeeded for a PaymentIntent of another order than its metadata names",
        ),
        (charge_refunded("evt_3", 100, intent_id="pi_other"), "not about an order of this gateway"),
        (intent_event("evt_4", "succeeded", livemode=True), "a live-mode event, and the gateway is not"),
        (
            b'{"id": "evt_5", "type": "customer.created", "created": 1, "data": {"object": {"id": "cus_1"}}}',
            "customer.created is recorded, not applied",
        ),
    ],
)
async def test_events_the_gateway_does_not_apply_are_recorded_and_acknowledged(
    store: Store, body: bytes, note: str
) -> None:
    await unpaid_order(store)

    receipt = await WebhookService(store, SETTINGS).receive(body)

    assert (receipt.outcome, receipt.note) == (Outcome.IGNORED, note)
    stored = await store.get_webhook_event(receipt.event_id)
    assert stored is not None
    assert (stored.status, stored.note) == (WebhookEventStatus.IGNORED, note)
    assert (await order_of(store)).status is PaymentStatus.REQUIRES_PAYMENT_METHOD


async def test_replaying_an_applied_event_changes_nothing_and_a_received_one_is_applied(store: Store) -> None:
    await unpaid_order(store)
    service = WebhookService(store, SETTINGS)
    await service.receive(intent_event("evt_1", "succeeded"))

    replayed = await service.replay("evt_1")

    assert (replayed.outcome, replayed.note) == (Outcome.APPLIED, "already succeeded")
    assert await webhook_audit(store) == ["webhook.payment_intent.succeeded"]
    event = await store.get_webhook_event("evt_1")
    assert event is not None
    assert event.note == "requires_payment_method -> succeeded"  # what it did first is kept
    with pytest.raises(LookupError):
        await service.replay("evt_unknown")

    # An event recorded but never applied (its delivery crashed): the replay applies it, in the operator's name.
    await unpaid_order(store, "order-2", "pi_2")
    await store.record_webhook_event(
        WebhookEvent(
            id="evt_2",
            type="payment_intent.succeeded",
            created=1,
            payload=intent_event("evt_2", "succeeded", intent_id="pi_2", order_id="order-2"),
            status=WebhookEventStatus.RECEIVED,
            received_at="",
            applied_at=None,
            deliveries=1,
            note=None,
        )
    )
    await service.replay("evt_2", actor="operator:alice")
    assert (await order_of(store, "order-2")).status is PaymentStatus.SUCCEEDED
    [entry] = [e for e in await store.list_audit("order-2") if e.action.startswith("webhook.")]
    assert entry.actor == "operator:alice"


async def test_an_event_the_store_cannot_apply_stays_recorded_and_is_not_acknowledged(
    store: Store, tmp_path: Path
) -> None:
    """Not an outage but a refusal (here the order's row is corrupt, written by something else than the gateway):
    the error reaches the route (a 5xx, so Stripe retries), and the event is kept with its payload, as received,
    for an operator to look at and replay once the row is mended."""
    await unpaid_order(store)
    with sqlite3.connect(tmp_path / "gateway.sqlite3") as other:
        other.execute("UPDATE orders SET status = 'mislaid' WHERE order_id = 'order-1'")
    body = intent_event("evt_1", "succeeded")

    with pytest.raises(StoreError, match="unreadable Order row"):
        await WebhookService(store, SETTINGS).receive(body)

    event = await store.get_webhook_event("evt_1")
    assert event is not None
    assert (event.status, event.payload, event.deliveries) == (WebhookEventStatus.RECEIVED, body, 1)
    assert await webhook_audit(store) == []
