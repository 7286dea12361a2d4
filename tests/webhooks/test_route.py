"""`POST /webhooks/stripe` over real HTTP: the signature first, 2xx only once recorded, 5xx so Stripe retries.

Signatures are made with the stripe SDK's own helper (`stripe.WebhookSignature`), as Stripe would sign them.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import stripe
from loguru import logger

from gateway.services import Services
from gateway.settings import Settings
from gateway.store import PaymentStatus, WebhookEventStatus
from gateway.store.sqlite import SqliteStore
from gateway.webhooks.route import WEBHOOKS
from gateway.webhooks.service import WebhookService
from gateway.webhooks.signature import MAX_WEBHOOK_BODY_BYTES
from tests.support.flaky_store import FlakyStore
from tests.support.server import RunningGateway, running_gateway
from tests.webhooks.events import intent_event, unpaid_order

SECRET = "whsec_current_0123456789abcdef"
OLD_SECRET = "whsec_previous_0123456789abcdef"


def signed(body: bytes, secret: str = SECRET, timestamp: int | None = None) -> dict[str, str]:
    stamp = int(time.time()) if timestamp is None else timestamp
    signature = stripe.WebhookSignature._compute_signature(f"{stamp}.{body.decode()}", secret)
    return {"Stripe-Signature": f"t={stamp},v1={signature}", "content-type": "application/json"}


@dataclass
class Webhooks:
    gateway: RunningGateway
    store: FlakyStore
    http: aiohttp.ClientSession
    log: list[dict[str, Any]]

    @property
    def url(self) -> str:
        return self.gateway.base_url + "/webhooks/stripe"

    async def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        async with self.http.post(self.url, data=body, headers=headers) as response:
            return response.status, await response.json()

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.log if line.get("event") == name]


async def webhooks_on(tmp_path: Path, secret: str) -> AsyncIterator[Webhooks]:
    settings = Settings(stripe_secret_key="sk_test_x", stripe_webhook_secret=secret)
    store = FlakyStore(await SqliteStore.open(tmp_path / "gateway.sqlite3"))
    await unpaid_order(store.inner)
    services = Services()
    services[WEBHOOKS] = WebhookService(store, settings)
    log: list[dict[str, Any]] = []
    sink = logger.add(
        lambda message: log.append({"event": message.record["message"], **message.record["extra"]}),
        level="INFO",
    )
    try:
        async with running_gateway(settings, services=services) as gateway, aiohttp.ClientSession() as http:
            yield Webhooks(gateway, store, http, log)
    finally:
        logger.remove(sink)
        await store.inner.close()


@pytest.fixture
async def webhooks(tmp_path: Path) -> AsyncIterator[Webhooks]:
    async for running in webhooks_on(tmp_path, f"{SECRET},{OLD_SECRET}"):
        yield running


async def test_a_signed_event_is_acknowledged_once_recorded_and_applied(webhooks: Webhooks) -> None:
    body = intent_event("evt_1", "succeeded")

    status, answer = await webhooks.post(body, signed(body))
    again = await webhooks.post(body, signed(body))

    assert (status, answer) == (200, {"received": True, "eventId": "evt_1", "outcome": "applied"})
    assert again == (200, {"received": True, "eventId": "evt_1", "outcome": "duplicate"})
    order = await webhooks.store.inner.get_order("order-1")
    assert order is not None
    assert order.status is PaymentStatus.SUCCEEDED


async def test_either_secret_of_a_rotation_is_accepted(webhooks: Webhooks) -> None:
    new = intent_event("evt_new", "requires_payment_method", error="card_declined")
    old = intent_event("evt_old", "succeeded")
    assert (await webhooks.post(new, signed(new, SECRET)))[0] == 200
    assert (await webhooks.post(old, signed(old, OLD_SECRET)))[0] == 200


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("wrong secret", "no_matching_signature"),
        ("tampered body", "no_matching_signature"),
        ("stale timestamp", "timestamp_outside_tolerance"),
        ("missing header", "missing_header"),
        ("garbage header", "malformed_header"),
    ],
)
async def test_a_delivery_that_is_not_genuine_is_400_and_logged_without_secrets(
    webhooks: Webhooks, case: str, reason: str
) -> None:
    body = intent_event("evt_1", "succeeded")
    headers = {
        "wrong secret": signed(body, "whsec_someone_else"),
        "tampered body": signed(body.replace(b"2500", b"9999")),
        "stale timestamp": signed(body, timestamp=int(time.time()) - 301),
        "missing header": {"content-type": "application/json"},
        "garbage header": {"Stripe-Signature": "v1=abc,t=", "content-type": "application/json"},
    }[case]

    status, answer = await webhooks.post(body, headers)

    assert status == 400
    assert "error" in answer
    [line] = webhooks.events("webhook_signature_invalid")
    assert line["reason"] == reason
    assert SECRET not in str(webhooks.log)
    assert SECRET not in str(answer)
    assert await webhooks.store.inner.get_webhook_event("evt_1") is None  # nothing recorded, nothing applied


async def test_a_body_larger_than_any_stripe_event_is_refused(webhooks: Webhooks) -> None:
    body = b'{"id": "evt_big", "padding": "' + b"x" * MAX_WEBHOOK_BODY_BYTES + b'"}'

    status, _ = await webhooks.post(body, signed(body))

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit holds while reading
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    async with webhooks.http.post(webhooks.url, data=chunks(), headers=signed(body)) as response:
        chunked_status = response.status
    assert (status, chunked_status) == (413, 413)
    assert await webhooks.store.inner.get_webhook_event("evt_big") is None


async def test_only_post_is_allowed(webhooks: Webhooks) -> None:
    async with webhooks.http.get(webhooks.url) as response:
        assert response.status == 405
        assert response.headers["allow"] == "POST"


async def test_a_store_outage_is_503_so_stripe_retries_and_the_retry_applies_it(webhooks: Webhooks) -> None:
    """The store failing is a fault no test can provoke from outside: FlakyStore injects it, once, before the
    delivery's transaction (record and apply) commits."""
    body = intent_event("evt_1", "succeeded")
    webhooks.store.inject_fault("receive_webhook_event")

    status, _ = await webhooks.post(body, signed(body))

    assert status == 503
    assert webhooks.store.faults_raised == ["receive_webhook_event#1"]
    order = await webhooks.store.inner.get_order("order-1")
    assert order is not None
    assert order.status is PaymentStatus.REQUIRES_PAYMENT_METHOD  # nothing half-applied
    assert await webhooks.store.inner.get_webhook_event("evt_1") is None  # nor half-recorded
    retried = await webhooks.post(body, signed(body))
    assert retried == (200, {"received": True, "eventId": "evt_1", "outcome": "applied"})
    event = await webhooks.store.inner.get_webhook_event("evt_1")
    assert event is not None
    assert event.status is WebhookEventStatus.APPLIED


async def test_an_answer_lost_after_the_commit_is_503_and_the_retry_is_a_duplicate(
    webhooks: Webhooks,
) -> None:
    """The transaction commits, then the store's answer is lost (FlakyStore, timing "after"): Stripe sees a 503
    and retries, and the retry finds the event applied: once, not twice."""
    body = intent_event("evt_1", "succeeded")
    webhooks.store.inject_fault("receive_webhook_event", timing="after")

    status, _ = await webhooks.post(body, signed(body))
    retried = await webhooks.post(body, signed(body))

    assert status == 503
    assert retried == (200, {"received": True, "eventId": "evt_1", "outcome": "duplicate"})
    event = await webhooks.store.inner.get_webhook_event("evt_1")
    assert event is not None
    assert (event.status, event.deliveries) == (WebhookEventStatus.APPLIED, 2)
    audit = await webhooks.store.inner.list_audit("order-1")
    assert [entry.action for entry in audit if entry.actor == "stripe"] == [
        "webhook.payment_intent.succeeded"
    ]


async def test_without_a_configured_secret_every_delivery_is_503_and_logged(tmp_path: Path) -> None:
    async for webhooks in webhooks_on(tmp_path, ""):
        body = intent_event("evt_1", "succeeded")
        status, _ = await webhooks.post(body, signed(body))
        assert status == 503
        assert webhooks.events("webhook_not_configured")
