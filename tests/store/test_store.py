"""The store's contract (base.Store), run against every backend: real SQLite files and real PostgreSQL databases.

Everything here goes through the `store` / `open_instance` fixtures and the Protocol alone, so each test runs once
per backend (tests/store/conftest.py). Backend-specific checks live in test_sqlite_only.py and
test_postgres_only.py.
"""

from __future__ import annotations

import asyncio
import re

import msgspec
import pytest

from gateway.store import (
    MAINTENANCE_OFF,
    AuditEntry,
    Customer,
    NewOrder,
    Order,
    OrderEffect,
    OrderNotFound,
    OrderUpdate,
    PaymentIntentRecord,
    PaymentStatus,
    QrRedemption,
    Refund,
    RefundInProgress,
    RefundRequest,
    RefundRequestStatus,
    StaleOrder,
    Store,
    StoreError,
    StoreUnavailable,
    WebhookEvent,
    WebhookEventStatus,
)
from gateway.store.migrations import Migration
from tests.store.conftest import FakeClock, StoreOpener

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")

ADDITIVE_FUTURE = Migration(
    6,
    "a newer gateway's additive migration",
    ("ALTER TABLE orders ADD COLUMN note TEXT",),
    oldest_compatible=5,
)
"""What a newer release may add while replicas of this one still run on the database (a rolling upgrade)."""
CONTRACT_FUTURE = Migration(
    6, "a newer gateway's contract migration", ("ALTER TABLE orders DROP COLUMN last_error",)
)
"""A newer release's migration that no older gateway can run on (no `oldest_compatible`): never applied at start-up
to a database in use."""
BREAKING_FUTURE = Migration(
    7, "a newer gateway's breaking migration", ("ALTER TABLE orders ADD COLUMN x TEXT",), oldest_compatible=6
)
"""A newer release's migration that only gateways from version 6 on may run on: not this one. (One without any
`oldest_compatible` is refused too: test_*_migrations_apply_once_and_refuse_a_newer_schema.)"""


def new_order(order_id: str = "ord_1", amount: int = 1500) -> NewOrder:
    return NewOrder(order_id=order_id, amount=amount, currency="eur", nonce="n0nce", owner="user_1")


def audit(action: str, order_id: str | None = "ord_1", **details: object) -> AuditEntry:
    return AuditEntry(action=action, actor="user_1", request_id="req_1", order_id=order_id, details=details)


def intent(
    intent_id: str = "pi_1",
    order_id: str = "ord_1",
    status: str = "requires_payment_method",
    attempt: int = 1,
    amount: int = 1500,
) -> PaymentIntentRecord:
    return PaymentIntentRecord(
        id=intent_id,
        order_id=order_id,
        attempt=attempt,
        amount=amount,
        currency="eur",
        status=status,
        created_at="",
        updated_at="",
    )


def refund(refund_id: str, created_at: str, order_id: str = "ord_1", request: str | None = None) -> Refund:
    return Refund(
        id=refund_id,
        order_id=order_id,
        payment_intent_id="pi_1",
        amount=500,
        currency="eur",
        status="succeeded",
        reason=None,
        requested_by="operator:alice",
        refund_request_id=request,
        created_at=created_at,
    )


# -- orders ----------------------------------------------------------------------------------------------------


async def test_create_order_creates_once_and_audits_once(store: Store) -> None:
    order, created = await store.create_order(new_order(), audit("order.created"))
    assert created
    assert (order.order_id, order.amount, order.currency, order.nonce, order.owner) == (
        "ord_1",
        1500,
        "eur",
        "n0nce",
        "user_1",
    )
    assert order.status is PaymentStatus.CREATING
    assert (order.amount_received, order.amount_refunded, order.attempt, order.version) == (0, 0, 1, 1)
    assert order.payment_intent_id is None
    assert order.last_error is None
    assert ISO.match(order.created_at)
    assert order.updated_at == order.created_at

    again, created_again = await store.create_order(new_order(amount=9999), audit("order.created"))
    assert not created_again
    assert again == order  # the stored one, not the second request
    assert [entry.action for entry in await store.list_audit()] == ["order.created"]
    assert await store.get_order("ord_1") == order


async def test_concurrent_create_order_creates_exactly_once(store: Store) -> None:
    results = await asyncio.gather(
        *(store.create_order(new_order(), audit("order.created")) for _ in range(20))
    )
    assert sum(created for _, created in results) == 1
    assert len({order for order, _ in results}) == 1
    assert len(await store.list_audit(order_id="ord_1")) == 1


async def test_two_instances_racing_create_exactly_once(open_instance: StoreOpener) -> None:
    first, second = await open_instance(), await open_instance()
    calls = [
        (first if i % 2 else second).create_order(new_order(), audit("order.created")) for i in range(20)
    ]
    results = await asyncio.gather(*calls)
    assert sum(created for _, created in results) == 1
    assert len({order for order, _ in results}) == 1
    assert len(await first.list_audit()) == 1
    assert await second.get_order("ord_1") == results[0][0]


async def test_get_order_of_unknown_id_is_none(store: Store) -> None:
    assert await store.get_order("nope") is None


async def test_find_order_by_current_and_replaced_intent(store: Store) -> None:
    order, _ = await store.create_order(new_order(), audit("order.created"))
    order = await store.update_order(
        "ord_1",
        order.version,
        OrderUpdate(status=PaymentStatus.CANCELED, payment_intent_id="pi_1"),
        audit("payment_intent.created"),
        intent("pi_1", status="canceled"),
    )
    order = await store.update_order(
        "ord_1",
        order.version,
        OrderUpdate(status=PaymentStatus.REQUIRES_PAYMENT_METHOD, payment_intent_id="pi_2", attempt=2),
        audit("payment_intent.replaced"),
        intent("pi_2", attempt=2),
    )
    assert order.payment_intent_id == "pi_2"
    assert await store.find_order_by_payment_intent("pi_2") == order
    assert await store.find_order_by_payment_intent("pi_1") == order
    assert await store.find_order_by_payment_intent("pi_unknown") is None
    history = await store.list_payment_intents("ord_1")
    assert [(record.id, record.attempt, record.status) for record in history] == [
        ("pi_1", 1, "canceled"),
        ("pi_2", 2, "requires_payment_method"),
    ]


async def test_update_order_changes_only_the_given_fields(store: Store) -> None:
    created, _ = await store.create_order(new_order(), audit("order.created"))
    updated = await store.update_order(
        "ord_1",
        1,
        OrderUpdate(
            status=PaymentStatus.REQUIRES_ACTION, customer_id="cus_1", last_error="card_declined: no"
        ),
        audit("order.payment_failed", code="card_declined"),
    )
    assert updated.version == 2
    assert updated.updated_at > created.updated_at
    assert updated.created_at == created.created_at
    assert (updated.status, updated.customer_id, updated.last_error) == (
        PaymentStatus.REQUIRES_ACTION,
        "cus_1",
        "card_declined: no",
    )
    # UNSET fields are left alone.
    assert (updated.amount, updated.currency, updated.nonce, updated.owner, updated.attempt) == (
        1500,
        "eur",
        "n0nce",
        "user_1",
        1,
    )

    cleared = await store.update_order(
        "ord_1", 2, OrderUpdate(last_error=None, amount=2000), audit("order.amount_changed")
    )
    assert cleared.last_error is None  # None writes NULL, unlike UNSET
    assert cleared.customer_id == "cus_1"
    assert (cleared.amount, cleared.version) == (2000, 3)
    assert await store.get_order("ord_1") == cleared
    assert [entry.action for entry in await store.list_audit("ord_1")] == [
        "order.amount_changed",
        "order.payment_failed",
        "order.created",
    ]


async def test_update_order_with_a_stale_version_writes_nothing(store: Store) -> None:
    await store.create_order(new_order(), audit("order.created"))
    current = await store.update_order("ord_1", 1, OrderUpdate(amount=2000), audit("order.amount_changed"))

    with pytest.raises(StaleOrder):
        await store.update_order(
            "ord_1",
            1,
            OrderUpdate(amount=3000, payment_intent_id="pi_1"),
            audit("payment_intent.created"),
            intent("pi_1", amount=3000),
        )
    assert await store.get_order("ord_1") == current
    assert await store.list_payment_intents("ord_1") == []
    assert await store.find_order_by_payment_intent("pi_1") is None
    assert [entry.action for entry in await store.list_audit()] == ["order.amount_changed", "order.created"]


async def test_update_order_of_unknown_order(store: Store) -> None:
    with pytest.raises(OrderNotFound):
        await store.update_order("nope", 1, OrderUpdate(amount=2000), audit("order.amount_changed", "nope"))
    assert await store.list_audit() == []


async def test_update_order_upserts_the_intent_by_id(store: Store) -> None:
    await store.create_order(new_order(), audit("order.created"))
    await store.update_order(
        "ord_1", 1, OrderUpdate(payment_intent_id="pi_1"), audit("payment_intent.created"), intent("pi_1")
    )
    [first] = await store.list_payment_intents("ord_1")
    await store.update_order(
        "ord_1",
        2,
        OrderUpdate(status=PaymentStatus.SUCCEEDED, amount_received=1500),
        audit("payment_intent.succeeded"),
        intent("pi_1", status="succeeded"),
    )
    [second] = await store.list_payment_intents("ord_1")
    assert (second.id, second.status) == ("pi_1", "succeeded")
    assert second.created_at == first.created_at
    assert second.updated_at > first.updated_at


async def test_an_order_write_and_its_audit_line_fail_together(store: Store) -> None:
    """An order's write and its audit line are one unit (on PostgreSQL one statement): an audit line the database
    refuses leaves no order row, and an order change it refuses leaves no audit line."""
    unauditable = msgspec.structs.replace(audit("order.created"), actor=None)  # actor is NOT NULL
    with pytest.raises(StoreError):
        await store.create_order(new_order(), unauditable)
    assert await store.get_order("ord_1") is None
    assert await store.list_audit() == []

    before, _ = await store.create_order(new_order(), audit("order.created"))
    with pytest.raises(StoreError) as raised:
        await store.update_order(
            "ord_1", 1, OrderUpdate(amount=0), audit("order.amount_changed")
        )  # CHECK > 0
    assert not isinstance(raised.value, StaleOrder | OrderNotFound | StoreUnavailable)
    with pytest.raises(StoreError):
        await store.update_order("ord_1", 1, OrderUpdate(amount=2000), unauditable)
    assert await store.get_order("ord_1") == before
    assert [entry.action for entry in await store.list_audit()] == ["order.created"]


async def test_update_order_failing_midway_leaves_no_trace(store: Store) -> None:
    """The order row is updated first; the intent row then violates a CHECK: all of it is rolled back."""
    before, _ = await store.create_order(new_order(), audit("order.created"))
    with pytest.raises(StoreError) as raised:
        await store.update_order(
            "ord_1",
            1,
            OrderUpdate(status=PaymentStatus.PROCESSING, payment_intent_id="pi_bad"),
            audit("payment_intent.created"),
            intent("pi_bad", amount=0),
        )
    assert not isinstance(raised.value, StaleOrder | OrderNotFound | StoreUnavailable)
    assert await store.get_order("ord_1") == before
    assert await store.list_payment_intents("ord_1") == []
    assert [entry.action for entry in await store.list_audit()] == ["order.created"]
    # The connection is usable again: nothing was left half-open.
    after = await store.update_order("ord_1", 1, OrderUpdate(amount=1600), audit("order.amount_changed"))
    assert after.version == 2


async def test_an_intent_cannot_move_to_another_order(store: Store) -> None:
    await store.create_order(new_order("ord_1"), audit("order.created"))
    other, _ = await store.create_order(new_order("ord_2"), audit("order.created", "ord_2"))
    await store.update_order(
        "ord_1", 1, OrderUpdate(payment_intent_id="pi_1"), audit("payment_intent.created"), intent("pi_1")
    )
    with pytest.raises(StoreError):
        await store.update_order(
            "ord_2",
            1,
            OrderUpdate(status=PaymentStatus.SUCCEEDED),
            audit("payment_intent.created", "ord_2"),
            intent("pi_1", order_id="ord_2", status="succeeded"),
        )
    assert await store.get_order("ord_2") == other
    assert [record.status for record in await store.list_payment_intents("ord_1")] == [
        "requires_payment_method"
    ]
    assert await store.list_payment_intents("ord_2") == []
    with pytest.raises(ValueError, match="ord_1"):
        await store.update_order("ord_2", 1, OrderUpdate(), audit("x", "ord_2"), intent("pi_9", "ord_1"))


async def test_raise_amount_refunded_only_grows(store: Store) -> None:
    await store.create_order(new_order(), audit("order.created"))
    raised, by = await store.raise_amount_refunded("ord_1", 500, audit("order.refunded", amount_refunded=500))
    assert (raised.amount_refunded, raised.version, by) == (500, 2, 500)

    for late in (300, 500):
        unchanged = await store.raise_amount_refunded("ord_1", late, audit("order.refunded"))
        assert unchanged == (raised, 0)

    raised_again, by = await store.raise_amount_refunded(
        "ord_1", 800, audit("order.refunded", amount_refunded=800)
    )
    assert (raised_again.amount_refunded, raised_again.version, by) == (800, 3, 300)
    assert [entry.details for entry in await store.list_audit() if entry.action == "order.refunded"] == [
        {"amount_refunded": 800},
        {"amount_refunded": 500},
    ]


async def test_raise_amount_refunded_of_unknown_order(store: Store) -> None:
    with pytest.raises(OrderNotFound):
        await store.raise_amount_refunded("nope", 100, audit("order.refunded", "nope"))
    assert await store.list_audit() == []


# -- refunds ---------------------------------------------------------------------------------------------------


async def test_add_refund_once_and_list_oldest_first(store: Store) -> None:
    await store.create_order(new_order(), audit("order.created"))
    later = refund("re_b", "2024-01-15T10:31:00.000Z")
    earlier = refund("re_a", "2024-01-15T10:30:00.000Z")
    assert await store.add_refund(later, audit("refund.created"))
    assert not await store.add_refund(later, audit("refund.created"))
    assert await store.add_refund(earlier, audit("refund.created"))
    assert await store.list_refunds("ord_1") == [earlier, later]
    assert await store.list_refunds("ord_other") == []
    assert [entry.action for entry in await store.list_audit()].count("refund.created") == 2


async def test_refund_needs_its_order(store: Store) -> None:
    with pytest.raises(StoreError):
        await store.add_refund(
            refund("re_c", "2024-01-15T10:31:00.000Z", order_id="nope"), audit("x", "nope")
        )
    assert await store.list_refunds("nope") == []
    assert await store.list_audit() == []


# -- refund requests -------------------------------------------------------------------------------------------


def refund_request(
    request_id: str = "rr_1", caller_key: str | None = None, amount: int = 500, order_id: str = "ord_1"
) -> RefundRequest:
    return RefundRequest(
        id=request_id,
        order_id=order_id,
        caller_key=caller_key,
        fingerprint="fp",
        requested_amount=amount,
        amount=amount,
        reason=None,
        requested_by="operator:alice",
        request_id="req_1",
        status=RefundRequestStatus.PENDING,
        tries=1,
        refund_id=None,
        result=None,
        error=None,
        created_at="",
        updated_at="",
    )


async def test_one_pending_refund_request_per_order(store: Store) -> None:
    await store.create_order(new_order(), audit("order.created"))
    first, started = await store.start_refund_request(refund_request("rr_1"), audit("refund.requested"))
    assert started
    assert (first.status, first.tries) == (RefundRequestStatus.PENDING, 1)
    assert ISO.match(first.created_at)
    assert await store.get_pending_refund_request("ord_1") == first

    second, started = await store.start_refund_request(refund_request("rr_2"), audit("refund.requested"))
    assert (second, started) == (first, False)
    assert [entry.action for entry in await store.list_audit()].count("refund.requested") == 1


async def test_refund_request_caller_key_names_one_request_for_good(store: Store) -> None:
    await store.create_order(new_order(), audit("order.created"))
    await store.start_refund_request(refund_request("rr_1", "key-1"), audit("refund.requested"))
    await store.close_refund_request("rr_1", RefundRequestStatus.REFUSED, "no", audit("refund.refused"))
    again, started = await store.start_refund_request(
        refund_request("rr_2", "key-1"), audit("refund.requested")
    )
    assert not started
    assert (again.id, again.status, again.error) == ("rr_1", RefundRequestStatus.REFUSED, "no")
    assert await store.get_refund_request(caller_key="key-1") == again
    assert await store.get_refund_request(caller_key="other") is None


async def test_finish_refund_request_records_all_in_one_transaction(store: Store) -> None:
    await store.create_order(new_order(), audit("order.created"))
    await store.start_refund_request(refund_request("rr_1", "key-1"), audit("refund.requested"))
    made = refund("re_1", "")
    order, by = await store.finish_refund_request("rr_1", made, b'{"ok":true}', 500, audit("refund.created"))
    assert (order.amount_refunded, by) == (500, 500)
    [recorded] = await store.list_refunds("ord_1")
    assert (recorded.id, recorded.refund_request_id) == ("re_1", "rr_1")
    done = await store.get_refund_request(caller_key="key-1")
    assert done is not None
    assert (done.status, done.refund_id, done.result) == (
        RefundRequestStatus.SUCCEEDED,
        "re_1",
        b'{"ok":true}',
    )
    assert await store.get_pending_refund_request("ord_1") is None

    # Finishing again (a second settlement) changes nothing and lowers nothing.
    again, by = await store.finish_refund_request("rr_1", made, b"other", 300, audit("refund.created"))
    assert (again.amount_refunded, by) == (500, 0)
    assert [entry.action for entry in await store.list_audit()].count("refund.created") == 1


async def test_finish_links_a_refund_recorded_first_from_elsewhere(store: Store) -> None:
    await store.create_order(new_order(), audit("order.created"))
    await store.add_refund(refund("re_1", "2024-01-15T10:30:00.000Z"), audit("refund.recorded"))
    await store.start_refund_request(refund_request("rr_1"), audit("refund.requested"))
    await store.finish_refund_request("rr_1", refund("re_1", ""), b"{}", 500, audit("refund.created"))
    [recorded] = await store.list_refunds("ord_1")
    assert (recorded.refund_request_id, recorded.created_at) == ("rr_1", "2024-01-15T10:30:00.000Z")


async def test_finish_refund_request_is_all_or_nothing(store: Store) -> None:
    await store.create_order(new_order(), audit("order.created"))
    await store.start_refund_request(refund_request("rr_1"), audit("refund.requested"))
    unknown_order = refund("re_1", "", order_id="nope")
    with pytest.raises(StoreError):
        await store.finish_refund_request("rr_1", unknown_order, b"{}", 500, audit("refund.created"))
    pending = await store.get_pending_refund_request("ord_1")
    assert pending is not None
    assert pending.id == "rr_1"
    assert await store.list_refunds("nope") == []


async def test_abandoned_refund_request_can_be_retried_once_nothing_else_is_pending(store: Store) -> None:
    await store.create_order(new_order(), audit("order.created"))
    await store.start_refund_request(refund_request("rr_1", "key-1"), audit("refund.requested"))
    closed = await store.close_refund_request(
        "rr_1", RefundRequestStatus.ABANDONED, "not found", audit("refund.abandoned")
    )
    assert (closed.status, closed.error) == (RefundRequestStatus.ABANDONED, "not found")
    # Closing again is a no-op: only a pending request closes.
    same = await store.close_refund_request("rr_1", RefundRequestStatus.REFUSED, "x", audit("refund.refused"))
    assert same.status is RefundRequestStatus.ABANDONED

    await store.start_refund_request(refund_request("rr_2"), audit("refund.requested"))
    with pytest.raises(RefundInProgress):
        await store.retry_refund_request("rr_1", 400, audit("refund.retried"))
    await store.close_refund_request("rr_2", RefundRequestStatus.ABANDONED, "x", audit("refund.abandoned"))

    retried = await store.retry_refund_request("rr_1", 400, audit("refund.retried"))
    assert (retried.status, retried.tries, retried.amount, retried.error) == (
        RefundRequestStatus.PENDING,
        2,
        400,
        None,
    )
    with pytest.raises(StoreError):  # only an abandoned request is retried
        await store.retry_refund_request("rr_1", 400, audit("refund.retried"))


async def test_concurrent_refund_requests_of_one_order_start_once(open_instance: StoreOpener) -> None:
    first, second = await open_instance(), await open_instance()
    await first.create_order(new_order(), audit("order.created"))
    starts = [
        (first if i % 2 else second).start_refund_request(
            refund_request(f"rr_{i}"), audit("refund.requested")
        )
        for i in range(10)
    ]
    results = await asyncio.gather(*starts)
    assert sum(started for _, started in results) == 1
    assert len({request.id for request, _ in results}) == 1


# -- webhook events --------------------------------------------------------------------------------------------


def webhook_event(event_id: str = "evt_1", event_type: str = "payment_intent.succeeded") -> WebhookEvent:
    return WebhookEvent(
        id=event_id,
        type=event_type,
        created=1_705_312_200,
        payload=b'{"id": "' + event_id.encode() + b'"}',
        status=WebhookEventStatus.RECEIVED,
        received_at="",
        applied_at=None,
        deliveries=1,
        note=None,
    )


def paid(_: Order) -> OrderEffect:
    return OrderEffect(
        note="paid",
        update=OrderUpdate(status=PaymentStatus.SUCCEEDED, amount_received=1500),
        intent=intent(status="succeeded"),
        amount_refunded=200,
        audit=audit("webhook.payment_intent.succeeded"),
    )


async def test_a_webhook_event_is_recorded_once_and_its_deliveries_counted(store: Store) -> None:
    first, new = await store.record_webhook_event(webhook_event())
    again, new_again = await store.record_webhook_event(webhook_event())
    assert (new, new_again) == (True, False)
    assert (first.deliveries, again.deliveries) == (1, 2)
    assert (again.status, again.payload, again.order_id) == (
        WebhookEventStatus.RECEIVED,
        b'{"id": "evt_1"}',
        None,
    )
    assert ISO.match(again.received_at)
    assert await store.get_webhook_event("evt_1") == again
    assert await store.get_webhook_event("evt_2") is None


async def test_applying_a_webhook_event_writes_its_effect_and_marks_it_in_one_transaction(
    store: Store,
) -> None:
    await store.create_order(new_order(), audit("order.created"))
    await store.record_webhook_event(webhook_event())

    order, effect = await store.apply_webhook_event("evt_1", "ord_1", paid)

    assert effect is not None
    assert (order.status, order.amount_received, order.amount_refunded) == (
        PaymentStatus.SUCCEEDED,
        1500,
        200,
    )
    assert [i.id for i in await store.list_payment_intents("ord_1")] == ["pi_1"]
    event = await store.get_webhook_event("evt_1")
    assert event is not None
    assert (event.status, event.order_id, event.note) == (WebhookEventStatus.APPLIED, "ord_1", "paid")
    # A second application (another delivery that raced this one) does nothing at all.
    same, nothing = await store.apply_webhook_event("evt_1", "ord_1", paid)
    assert (same, nothing) == (order, None)
    assert [e.action for e in await store.list_audit("ord_1")].count("webhook.payment_intent.succeeded") == 1


async def test_receiving_a_webhook_event_records_and_applies_it_in_one_transaction(store: Store) -> None:
    await store.create_order(new_order(), audit("order.created"))

    recorded, order, effect = await store.receive_webhook_event(webhook_event(), "ord_1", paid)

    assert (recorded.status, recorded.deliveries, effect) == (WebhookEventStatus.RECEIVED, 1, paid(order))
    assert (order.status, order.amount_received) == (PaymentStatus.SUCCEEDED, 1500)
    event = await store.get_webhook_event("evt_1")
    assert event is not None
    assert (event.status, event.order_id, event.note, event.deliveries) == (
        WebhookEventStatus.APPLIED,
        "ord_1",
        "paid",
        1,
    )
    # Another delivery is counted and applies nothing.
    again, same, nothing = await store.receive_webhook_event(webhook_event(), "ord_1", paid)
    assert (again.status, again.deliveries, same, nothing) == (WebhookEventStatus.APPLIED, 2, order, None)
    assert [e.action for e in await store.list_audit("ord_1")].count("webhook.payment_intent.succeeded") == 1


async def test_receiving_an_event_that_cannot_be_applied_records_nothing(store: Store) -> None:
    with pytest.raises(OrderNotFound):
        await store.receive_webhook_event(webhook_event(), "ord_missing", paid)
    assert await store.get_webhook_event("evt_1") is None  # the caller records it on its own


async def test_the_maintenance_switch_is_off_until_switched_and_audited(store: Store) -> None:
    assert await store.get_maintenance() == MAINTENANCE_OFF

    on = await store.set_maintenance(True, "Back at 03:30", audit("maintenance.on", None))
    assert (on.enabled, on.message, on.changed_by) == (True, "Back at 03:30", "user_1")
    assert ISO.match(on.changed_at)
    assert await store.get_maintenance() == on
    off = await store.set_maintenance(False, "", audit("maintenance.off", None))
    assert (await store.get_maintenance()).enabled is False == off.enabled
    assert [entry.action for entry in await store.list_audit()][:2] == ["maintenance.off", "maintenance.on"]


async def test_a_failure_half_way_through_applying_leaves_no_trace(store: Store) -> None:
    await store.create_order(new_order(), audit("order.created"))
    await store.create_order(new_order("ord_2"), audit("order.created", "ord_2"))
    await store.record_webhook_event(webhook_event())

    def breaks_after_the_order_update(_: Order) -> OrderEffect:
        # The order row is updated first; the intent (recorded for another order) then fails inside the transaction.
        return msgspec.structs.replace(paid(_), intent=intent("pi_1", order_id="ord_2"))

    with pytest.raises(ValueError, match="pi_1"):
        await store.apply_webhook_event("evt_1", "ord_1", breaks_after_the_order_update)

    order = await store.get_order("ord_1")
    assert order is not None
    assert (order.status, order.amount_refunded, order.version) == (PaymentStatus.CREATING, 0, 1)
    event = await store.get_webhook_event("evt_1")
    assert event is not None
    assert event.status is WebhookEventStatus.RECEIVED
    assert await store.list_payment_intents("ord_1") == []
    order, effect = await store.apply_webhook_event("evt_1", "ord_1", paid)  # the retry applies it whole
    assert effect is not None
    assert order.status is PaymentStatus.SUCCEEDED


async def test_applying_to_an_unknown_order_or_an_unknown_event_fails(store: Store) -> None:
    await store.record_webhook_event(webhook_event())
    with pytest.raises(OrderNotFound):
        await store.apply_webhook_event("evt_1", "nope", paid)
    await store.create_order(new_order(), audit("order.created"))
    with pytest.raises(StoreError):
        await store.apply_webhook_event("evt_unknown", "ord_1", paid)


async def test_ignoring_notes_and_listing_webhook_events(store: Store, clock: FakeClock) -> None:
    await store.create_order(new_order(), audit("order.created"))
    for event_id in ("evt_a", "evt_b", "evt_c"):
        await store.record_webhook_event(webhook_event(event_id))
        clock.advance(1)
    await store.apply_webhook_event("evt_a", "ord_1", paid)
    assert await store.ignore_webhook_event("evt_b", "not ours")
    assert not await store.ignore_webhook_event("evt_a", "too late")  # applied stays applied...
    assert await store.ignore_webhook_event(
        "evt_a", "on purpose", again=True
    )  # ...unless an operator says so
    await store.note_webhook_event_failure("evt_c", "store unavailable")
    await store.note_webhook_event_failure("evt_b", "ignored: not overwritten")

    listed = await store.list_webhook_events()
    assert [(e.id, e.status, e.note) for e in listed] == [
        ("evt_c", WebhookEventStatus.RECEIVED, "store unavailable"),
        ("evt_b", WebhookEventStatus.IGNORED, "not ours"),
        ("evt_a", WebhookEventStatus.IGNORED, "on purpose"),
    ]
    assert [e.id for e in await store.list_webhook_events(limit=1)] == ["evt_c"]
    assert [e.id for e in await store.list_webhook_events(status=WebhookEventStatus.IGNORED)] == [
        "evt_b",
        "evt_a",
    ]
    assert [e.id for e in await store.list_webhook_events(order_id="ord_1")] == ["evt_a"]


# -- customers -------------------------------------------------------------------------------------------------


async def test_customers_first_writer_wins(store: Store) -> None:
    assert await store.get_customer("hash_1") is None
    first = await store.add_customer(Customer(email_hash="hash_1", customer_id="cus_1", created_at=""))
    assert (first.email_hash, first.customer_id) == ("hash_1", "cus_1")
    assert ISO.match(first.created_at)
    second = await store.add_customer(Customer(email_hash="hash_1", customer_id="cus_2", created_at=""))
    assert second == first
    assert await store.get_customer("hash_1") == first


# -- audit -----------------------------------------------------------------------------------------------------


async def test_list_audit_newest_first_filtered_and_limited(store: Store) -> None:
    await store.create_order(new_order("ord_1"), audit("order.created", "ord_1", amount=1500))
    await store.create_order(new_order("ord_2"), audit("order.created", "ord_2"))
    details: dict[str, object] = {"from": 1500, "to": 2000, "nested": {"list": [1, "two", None]}, "ok": True}
    changed = AuditEntry(action="order.amount_changed", actor="user_1", request_id="req_1", order_id="ord_1")
    await store.update_order(
        "ord_1", 1, OrderUpdate(amount=2000), msgspec.structs.replace(changed, details=details)
    )

    everything = await store.list_audit()
    assert [(entry.action, entry.order_id) for entry in everything] == [
        ("order.amount_changed", "ord_1"),
        ("order.created", "ord_2"),
        ("order.created", "ord_1"),
    ]
    newest = everything[0]
    assert newest.details == details
    assert (newest.actor, newest.request_id) == ("user_1", "req_1")
    assert ISO.match(newest.at)
    ids = [entry.id for entry in everything]
    assert all(isinstance(entry_id, int) for entry_id in ids)
    assert len(set(ids)) == 3

    assert await store.list_audit(order_id="ord_1") == [everything[0], everything[2]]
    assert await store.list_audit(limit=2) == everything[:2]
    assert await store.list_audit(order_id="ord_1", limit=1) == [everything[0]]
    assert await store.list_audit(order_id="ord_3") == []


async def test_audit_keeps_a_given_time(store: Store) -> None:
    entry = AuditEntry(
        action="order.created",
        actor="stripe",
        request_id=None,
        order_id="ord_1",
        at="2020-01-01T00:00:00.000Z",
    )
    await store.create_order(new_order(), entry)
    [stored] = await store.list_audit()
    assert (stored.at, stored.details, stored.request_id) == ("2020-01-01T00:00:00.000Z", {}, None)


# -- availability ----------------------------------------------------------------------------------------------


async def test_ping_and_closed_store(store: Store) -> None:
    await store.ping()
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(StoreUnavailable):
        await store.ping()
    with pytest.raises(StoreUnavailable):
        await store.get_order("ord_1")
    with pytest.raises(StoreUnavailable):
        await store.create_order(new_order(), audit("order.created"))


async def test_cancelled_calls_leave_whole_records_or_nothing(store: Store) -> None:
    """Cancel create_order at every await point in turn: each order is then either absent or there with its
    audit line, and the store keeps working (no transaction left open on the shared connection)."""
    for step in range(12):
        order_id = f"ord_{step}"
        task = asyncio.create_task(store.create_order(new_order(order_id), audit("order.created", order_id)))
        for _ in range(step):
            await asyncio.sleep(0)  # a scheduling point, not a wait: lets the task run one more step
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        stored = await store.get_order(order_id)
        lines = await store.list_audit(order_id=order_id)
        assert len(lines) == (0 if stored is None else 1)
    _, created = await store.create_order(new_order("ord_last"), audit("order.created", "ord_last"))
    assert created


# -- security: guest client secrets, QR code redemptions ---------------------------------------------------------


async def test_an_intents_client_secret_digest_is_kept_once_known(store: Store) -> None:
    await store.create_order(new_order(), audit("order.created"))
    unknown = intent("pi_1")
    known = msgspec.structs.replace(unknown, client_secret_sha256="ab" * 32)
    await store.update_order("ord_1", 1, OrderUpdate(payment_intent_id="pi_1"), audit("a"), unknown)
    assert [i.client_secret_sha256 for i in await store.list_payment_intents("ord_1")] == [None]
    await store.update_order("ord_1", 2, OrderUpdate(), audit("b"), known)
    # A later report without the secret (a webhook, say) never erases it, nor does one with another value.
    await store.update_order("ord_1", 3, OrderUpdate(), audit("c"), unknown)
    other = msgspec.structs.replace(unknown, client_secret_sha256="cd" * 32)
    await store.update_order("ord_1", 4, OrderUpdate(), audit("d"), other)
    assert [i.client_secret_sha256 for i in await store.list_payment_intents("ord_1")] == ["ab" * 32]


async def test_a_qr_code_is_redeemed_once_whoever_scans_it_and_the_first_scan_is_audited(
    store: Store,
) -> None:
    await store.create_order(new_order(), audit("order.created"))

    def scan(by: str) -> QrRedemption:
        return QrRedemption(
            order_id="ord_1", key_id="kid001", redeemed_at="", redeemed_by=by, request_id="req"
        )

    results = await asyncio.gather(
        *(store.redeem_qr(scan(f"user:staff-{n}"), audit("qr_code.redeemed")) for n in range(5))
    )
    firsts = [redemption for redemption, first in results if first]
    assert len(firsts) == 1
    assert {redemption for redemption, _ in results} == {firsts[0]}  # every scan sees the first one
    assert ISO.match(firsts[0].redeemed_at)
    actions = [entry.action for entry in await store.list_audit("ord_1")]
    assert actions.count("qr_code.redeemed") == 1


async def test_a_qr_redemption_needs_its_order(store: Store) -> None:
    with pytest.raises(StoreError):
        await store.redeem_qr(
            QrRedemption(order_id="nope", key_id="k", redeemed_at="", redeemed_by="x", request_id=None),
            audit("qr_code.redeemed", "nope"),
        )
