"""`gateway webhooks list|show|replay`, run as the real console script against a real SQLite store.

The events are recorded as the webhook route records them (`WebhookService.receive`), or only recorded
(`Store.record_webhook_event`: a crash before applying it). The commands need the store alone: no emulator, no
Stripe key.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from gateway.settings import Settings
from gateway.store import (
    AuditEntry,
    NewOrder,
    Order,
    OrderUpdate,
    PaymentIntentRecord,
    PaymentStatus,
    Store,
    WebhookEvent,
    WebhookEventStatus,
)
from gateway.store.sqlite import SqliteStore
from gateway.webhooks.service import Outcome, WebhookService

REPO = Path(__file__).resolve().parents[2]
GATEWAY = Path(sys.executable).parent / "gateway"
CREATED = 1700000000


class StepClock:
    """Every timestamp the store writes is 1 s after the last: `received_at` orders the events as recorded."""

    def __init__(self) -> None:
        self.now = datetime.datetime(2024, 1, 15, 10, 30, tzinfo=datetime.UTC)

    def __call__(self) -> datetime.datetime:
        self.now += datetime.timedelta(seconds=1)
        return self.now


def intent_event(
    event_id: str,
    intent_id: str,
    order_id: str,
    *,
    event_type: str = "payment_intent.succeeded",
    status: str = "succeeded",
    livemode: bool = False,
) -> bytes:
    received = 2500 if status == "succeeded" else 0
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "api_version": "2024-06-20",
            "type": event_type,
            "created": CREATED,
            "livemode": livemode,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "data": {
                "object": {
                    "id": intent_id,
                    "object": "payment_intent",
                    "amount": 2500,
                    "amount_received": received,
                    "currency": "eur",
                    "status": status,
                    "livemode": livemode,
                    "metadata": {"order_id": order_id},
                }
            },
        }
    ).encode()


def customer_event(event_id: str) -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": "customer.created",
            "created": CREATED,
            "livemode": False,
            "data": {"object": {"id": "cus_1", "object": "customer"}},
        }
    ).encode()


async def add_order(store: Store, order_id: str, intent_id: str) -> Order:
    """An order whose PaymentIntent was created and awaits payment, as `createPaymentIntent` leaves it."""
    order, created = await store.create_order(
        NewOrder(
            order_id=order_id, amount=2500, currency="eur", nonce=f"nonce-{order_id}", owner="user:alice"
        ),
        AuditEntry(action="order.created", actor="user:alice", request_id=None, order_id=order_id),
    )
    assert created
    return await store.update_order(
        order_id,
        order.version,
        OrderUpdate(status=PaymentStatus.REQUIRES_PAYMENT_METHOD, payment_intent_id=intent_id),
        AuditEntry(action="payment_intent.created", actor="user:alice", request_id=None, order_id=order_id),
        intent=PaymentIntentRecord(
            id=intent_id,
            order_id=order_id,
            attempt=1,
            amount=2500,
            currency="eur",
            status="requires_payment_method",
            created_at="",
            updated_at="",
        ),
    )


async def record_only(store: Store, body: bytes) -> None:
    """Recorded, never applied: what a crash between recording and applying leaves."""
    event = json.loads(body)
    await store.record_webhook_event(
        WebhookEvent(
            id=event["id"],
            type=event["type"],
            created=event["created"],
            payload=body,
            status=WebhookEventStatus.RECEIVED,
            received_at="",
            applied_at=None,
            deliveries=1,
            note=None,
        )
    )


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "gateway.sqlite3"


@pytest.fixture
async def store(database: Path) -> AsyncIterator[Store]:
    """The test's own connection to the database the commands use (WAL: it stays open while they run)."""
    opened = await SqliteStore.open(database, clock=StepClock())
    yield opened
    await opened.close()


@pytest.fixture
async def seeded(store: Store) -> Store:
    """Three orders and five events, oldest first:
    - evt_paid_1: order-1 paid (applied), delivered twice;
    - evt_customer: a type the gateway does not apply (ignored);
    - evt_failed_2: order-2's payment failed (applied);
    - evt_paid_2: order-2 paid (applied);
    - evt_paid_3: order-3 paid, recorded but never applied (received)."""
    service = WebhookService(store, Settings())
    await add_order(store, "order-1", "pi_1")
    await add_order(store, "order-2", "pi_2")
    await add_order(store, "order-3", "pi_3")
    paid_1 = intent_event("evt_paid_1", "pi_1", "order-1")
    assert (await service.receive(paid_1)).outcome is Outcome.APPLIED
    assert (await service.receive(customer_event("evt_customer"))).outcome is Outcome.IGNORED
    failed = intent_event(
        "evt_failed_2",
        "pi_2",
        "order-2",
        event_type="payment_intent.payment_failed",
        status="requires_payment_method",
    )
    assert (await service.receive(failed)).outcome is Outcome.APPLIED
    assert (await service.receive(intent_event("evt_paid_2", "pi_2", "order-2"))).outcome is Outcome.APPLIED
    assert (await service.receive(paid_1)).outcome is Outcome.DUPLICATE  # Stripe's second delivery
    await record_only(store, intent_event("evt_paid_3", "pi_3", "order-3"))
    return store


def gateway(database: Path, cwd: Path, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    """Run `gateway ARGS` as an operator would, with no Stripe key (nothing may need one) and no .env."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "STRIPE_", "NODE_ENV"))}
    env.update(PYTHONPATH=str(REPO), DATABASE_URL=f"sqlite:///{database}", **extra_env)
    return subprocess.run(
        [str(GATEWAY), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def table(stdout: str) -> list[dict[str, str]]:
    """The rows of `webhooks list`, read by the header's column positions (so the alignment is checked too)."""
    header, *lines = stdout.splitlines()
    names = header.split()
    starts = [header.index(name) for name in names]
    rows = []
    for line in lines:
        cells = {}
        for index, (name, start) in enumerate(zip(names, starts, strict=True)):
            end = starts[index + 1] if index + 1 < len(names) else None
            assert start == 0 or line[start - 1] == " ", f"{name} is not aligned in {line!r}"
            cells[name] = line[start:end].strip()
        rows.append(cells)
    return rows


# -- list --------------------------------------------------------------------------------------------------------


async def test_list_prints_recent_events_newest_first_in_aligned_columns(
    seeded: Store, database: Path, tmp_path: Path
) -> None:
    result = gateway(database, tmp_path, "webhooks", "list")
    assert (result.returncode, result.stderr) == (0, "")
    rows = table(result.stdout)
    assert list(rows[0]) == ["RECEIVED", "EVENT", "TYPE", "STATUS", "DELIVERIES", "ORDER", "NOTE"]
    assert [(r["EVENT"], r["TYPE"], r["STATUS"], r["DELIVERIES"], r["ORDER"], r["NOTE"]) for r in rows] == [
        ("evt_paid_3", "payment_intent.succeeded", "received", "1", "-", "-"),
        (
            "evt_paid_2",
            "payment_intent.succeeded",
            "applied",
            "1",
            "order-2",
            "requires_payment_method -> succeeded",
        ),
        (
            "evt_failed_2",
            "payment_intent.payment_failed",
            "applied",
            "1",
            "order-2",
            "already requires_payment_method",
        ),
        (
            "evt_customer",
            "customer.created",
            "ignored",
            "1",
            "-",
            "customer.created is recorded, not applied",
        ),
        (
            "evt_paid_1",
            "payment_intent.succeeded",
            "applied",
            "2",
            "order-1",
            "requires_payment_method -> succeeded",
        ),
    ]
    stored = {event.id: event for event in await seeded.list_webhook_events()}
    assert [r["RECEIVED"] for r in rows] == [stored[r["EVENT"]].received_at for r in rows]
    assert [r["RECEIVED"] for r in rows] == sorted((r["RECEIVED"] for r in rows), reverse=True)


async def test_list_json_is_one_object_per_line_without_the_payload(
    seeded: Store, database: Path, tmp_path: Path
) -> None:
    result = gateway(database, tmp_path, "webhooks", "list", "--json")
    assert (result.returncode, result.stderr) == (0, "")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    stored = await seeded.list_webhook_events()
    expected = [msgspec.to_builtins(event) for event in stored]
    for event in expected:
        del event["payload"]
    assert lines == expected
    assert [line["id"] for line in lines] == [
        "evt_paid_3",
        "evt_paid_2",
        "evt_failed_2",
        "evt_customer",
        "evt_paid_1",
    ]
    assert lines[-1] == {
        "id": "evt_paid_1",
        "type": "payment_intent.succeeded",
        "created": CREATED,
        "status": "applied",
        "received_at": stored[-1].received_at,
        "applied_at": stored[-1].applied_at,
        "deliveries": 2,
        "order_id": "order-1",
        "note": "requires_payment_method -> succeeded",
    }


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        pytest.param(["--status", "applied"], ["evt_paid_2", "evt_failed_2", "evt_paid_1"], id="status"),
        pytest.param(["--status", "received"], ["evt_paid_3"], id="received"),
        pytest.param(["--order-id", "order-2"], ["evt_paid_2", "evt_failed_2"], id="order"),
        pytest.param(["--order-id", "order-2", "--status", "ignored"], [], id="both"),
        pytest.param(["--limit", "2"], ["evt_paid_3", "evt_paid_2"], id="limit"),
        pytest.param(["--limit", "1", "--status", "ignored"], ["evt_customer"], id="limit-status"),
    ],
)
async def test_list_filters(
    seeded: Store, database: Path, tmp_path: Path, filters: list[str], expected: list[str]
) -> None:
    as_json = gateway(database, tmp_path, "webhooks", "list", "--json", *filters)
    assert (as_json.returncode, as_json.stderr) == (0, "")
    assert [json.loads(line)["id"] for line in as_json.stdout.splitlines()] == expected
    as_text = gateway(database, tmp_path, "webhooks", "list", *filters)
    assert as_text.returncode == 0
    if expected:
        assert [row["EVENT"] for row in table(as_text.stdout)] == expected
    else:
        assert as_text.stdout == "no webhook events\n"


def test_list_refuses_a_limit_below_one(database: Path, tmp_path: Path) -> None:
    result = gateway(database, tmp_path, "webhooks", "list", "--limit", "0")
    assert result.returncode == 2
    assert "--limit: must be 1 or more" in result.stderr


def test_no_database_is_an_error_and_none_is_created(database: Path, tmp_path: Path) -> None:
    """A mistyped DATABASE_URL or the wrong directory must not look like an empty, healthy store."""
    for command in (["list"], ["show", "evt_1"], ["replay", "evt_1"]):
        result = gateway(database, tmp_path, "webhooks", *command)
        assert result.returncode == 2, command
        assert result.stdout == ""
        assert result.stderr == (
            f"gateway webhooks {command[0]}: store: no database at {database} (DATABASE_URL=sqlite:///{database})\n"
        )
    assert not database.exists()
    assert not (tmp_path / "data").exists()  # nor the default one, and no emulator state either


def test_a_file_that_is_not_a_database_is_a_store_error(database: Path, tmp_path: Path) -> None:
    database.write_bytes(b"not a database" * 100)
    result = gateway(database, tmp_path, "webhooks", "list")
    assert result.returncode == 2
    assert result.stderr.startswith("gateway webhooks list: store: ")
    assert result.stdout == ""


# -- show --------------------------------------------------------------------------------------------------------


async def test_show_prints_the_event_and_its_payload_pretty_printed(
    seeded: Store, database: Path, tmp_path: Path
) -> None:
    result = gateway(database, tmp_path, "webhooks", "show", "evt_paid_1")
    assert (result.returncode, result.stderr) == (0, "")
    head, payload = result.stdout.split("payload:\n")
    fields = dict(line.split(":", 1) for line in head.splitlines())
    event = await seeded.get_webhook_event("evt_paid_1")
    assert event is not None
    assert {name: value.strip() for name, value in fields.items()} == {
        "id": "evt_paid_1",
        "type": "payment_intent.succeeded",
        "status": "applied",
        "created": f"2023-11-14T22:13:20Z ({CREATED})",
        "received at": event.received_at,
        "applied at": event.applied_at,
        "deliveries": "2",
        "order id": "order-1",
        "note": "requires_payment_method -> succeeded",
    }
    assert json.loads(payload) == json.loads(intent_event("evt_paid_1", "pi_1", "order-1"))
    assert '\n  "data": {\n    "object": {\n      "id": "pi_1",' in payload  # indented, in Stripe's key order


async def test_show_an_unknown_event_exits_1(seeded: Store, database: Path, tmp_path: Path) -> None:
    result = gateway(database, tmp_path, "webhooks", "show", "evt_nope")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "gateway webhooks show: no webhook event evt_nope\n"


# -- replay ------------------------------------------------------------------------------------------------------


async def test_replaying_an_applied_event_changes_nothing(
    seeded: Store, database: Path, tmp_path: Path
) -> None:
    order_before = await seeded.get_order("order-1")
    audit_before = await seeded.list_audit()
    result = gateway(database, tmp_path, "webhooks", "replay", "evt_paid_1")
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout == "evt_paid_1: applied (already succeeded)\n"
    )  # only that: the log lines go to stderr
    assert await seeded.get_order("order-1") == order_before
    assert await seeded.list_audit() == audit_before
    event = await seeded.get_webhook_event("evt_paid_1")
    assert event is not None
    assert (event.status, event.order_id, event.deliveries) == (WebhookEventStatus.APPLIED, "order-1", 2)


async def test_replaying_a_received_event_applies_it(seeded: Store, database: Path, tmp_path: Path) -> None:
    before = await seeded.get_order("order-3")
    assert before is not None
    assert before.status is PaymentStatus.REQUIRES_PAYMENT_METHOD
    result = gateway(database, tmp_path, "webhooks", "replay", "evt_paid_3")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "evt_paid_3: applied (requires_payment_method -> succeeded)\n"
    after = await seeded.get_order("order-3")
    assert after is not None
    assert (after.status, after.amount_received, after.version) == (
        PaymentStatus.SUCCEEDED,
        2500,
        before.version + 1,
    )
    event = await seeded.get_webhook_event("evt_paid_3")
    assert event is not None
    assert (event.status, event.order_id, event.note) == (
        WebhookEventStatus.APPLIED,
        "order-3",
        "requires_payment_method -> succeeded",
    )
    [audit, *_] = await seeded.list_audit("order-3")
    assert (audit.action, audit.request_id, audit.details["after"]) == (
        "webhook.payment_intent.succeeded",
        "evt_paid_3",
        "succeeded",
    )
    listed = gateway(database, tmp_path, "webhooks", "list", "--status", "received", "--json")
    assert listed.stdout == ""

    again = gateway(database, tmp_path, "webhooks", "replay", "evt_paid_3")
    assert (again.returncode, again.stdout) == (0, "evt_paid_3: applied (already succeeded)\n")
    assert await seeded.get_order("order-3") == after


async def test_replaying_an_ignored_event_says_why(seeded: Store, database: Path, tmp_path: Path) -> None:
    result = gateway(database, tmp_path, "webhooks", "replay", "evt_customer")
    assert (result.returncode, result.stdout) == (
        0,
        "evt_customer: ignored (customer.created is recorded, not applied)\n",
    )


async def test_replaying_an_unknown_event_exits_1(seeded: Store, database: Path, tmp_path: Path) -> None:
    events_before = await seeded.list_webhook_events()
    result = gateway(database, tmp_path, "webhooks", "replay", "evt_nope")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "gateway webhooks replay: no webhook event evt_nope\n"
    assert await seeded.list_webhook_events() == events_before


async def test_replay_refuses_an_event_of_the_other_mode(
    store: Store, database: Path, tmp_path: Path
) -> None:
    """Applied by a live gateway, replayed from a shell without its keys (test mode): refused, and the event is
    left as it was (the service would have marked it ignored)."""
    live = WebhookService(store, Settings(stripe_secret_key="sk_live_123"))
    await add_order(store, "order-live", "pi_live")
    body = intent_event("evt_live", "pi_live", "order-live", livemode=True)
    assert (await live.receive(body)).outcome is Outcome.APPLIED
    before = await store.get_webhook_event("evt_live")
    result = gateway(database, tmp_path, "webhooks", "replay", "evt_live")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.startswith(
        "gateway webhooks replay: evt_live: a live-mode event, and these settings are"
    )
    assert await store.get_webhook_event("evt_live") == before
