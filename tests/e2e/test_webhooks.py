"""Stripe's webhooks end to end: the emulator process signs and delivers each event to the gateway's real port, and
the gateway's store follows what happened at Stripe without the gateway having asked.

Payments, failures, cancellations and refunds are made directly at (emulated) Stripe with the SDK, as the phone's
PaymentSheet or the Dashboard would: the only way the store can learn of them is the webhook. The emulator delivers
each event about a second after it happens, so the tests poll the store (with a deadline) until it shows it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
import stripe

from gateway.settings import Settings
from gateway.store import Order, PaymentStatus, Store, WebhookEventStatus, open_store
from tests.support import polling
from tests.support.server import RunningGateway, running_gateway
from tests.support.stripe_emulator import StripeEmulator
from tests.support.tokens import TEST_JWT_SECRET, admin_headers, bearer_headers

T = TypeVar("T")
ALICE = bearer_headers("alice")
"""Who pays in these tests: a signed-in user (refunds are made by an admin)."""
ADMIN = admin_headers()
DELIVERY_DEADLINE_S = 15.0
"""How long an event may take to arrive (the emulator waits about a second before sending each)."""


async def eventually(check: Callable[[], Awaitable[T | None]], what: str) -> T:
    return await polling.eventually(check, what, DELIVERY_DEADLINE_S)


@dataclass
class Gateway:
    running: RunningGateway
    store: Store
    sdk: stripe.StripeClient
    http: aiohttp.ClientSession

    async def call(self, path: str, payload: object, *, admin: bool = False) -> Any:
        headers = ADMIN if admin else ALICE
        async with self.http.post(
            f"{self.running.trpc_url}/stripe.{path}", json=payload, headers=headers
        ) as r:
            body = await r.json()
            assert r.status == 200, body
            return body["result"]["data"]

    async def status(self, order_id: str) -> Any:
        url = f"{self.running.trpc_url}/stripe.getPaymentStatus"
        params = {"input": json.dumps({"orderId": order_id})}
        async with self.http.get(url, params=params, headers=ALICE) as response:
            return (await response.json())["result"]["data"]

    async def create(self, order_id: str, amount: int = 2500) -> str:
        created = await self.call(
            "createPaymentIntent", {"orderId": order_id, "amount": amount, "currency": "eur"}
        )
        intent_id: str = created["paymentIntentId"]
        return intent_id

    async def order_when(self, order_id: str, condition: Callable[[Order], bool], what: str) -> Order:
        async def check() -> Order | None:
            order = await self.store.get_order(order_id)
            return order if order is not None and condition(order) else None

        return await eventually(check, what)

    async def applied_events(self, order_id: str) -> list[str]:
        events = await self.store.list_webhook_events(order_id=order_id, status=WebhookEventStatus.APPLIED)
        return sorted(event.type for event in events)


@pytest.fixture
async def gateway(fresh_stripe_emulator: StripeEmulator, tmp_path: Path) -> AsyncIterator[Gateway]:
    emulator = fresh_stripe_emulator
    settings = Settings(
        stripe_secret_key=emulator.secret_key,
        stripe_publishable_key=emulator.publishable_key,
        stripe_webhook_secret=emulator.webhook_secret,
        stripe_api_base=emulator.api_base,
        stripe_max_network_retries=0,
        database_url=f"sqlite:///{tmp_path / 'gateway.sqlite3'}",
        jwt_secret=TEST_JWT_SECRET,
    )
    http_client = stripe.AIOHTTPClient()
    sdk = stripe.StripeClient(
        emulator.secret_key, base_addresses={"api": emulator.api_base}, http_client=http_client
    )
    async with running_gateway(settings) as running:
        emulator.register_webhook("gateway", f"{running.base_url}/webhooks/stripe")
        store = await open_store(settings.database_url)
        try:
            async with aiohttp.ClientSession() as http:
                yield Gateway(running, store, sdk, http)
        finally:
            emulator.unregister_webhook("gateway")
            await store.close()
            await http_client.close_async()  # type: ignore[no-untyped-call]


async def test_a_payment_made_at_stripe_reaches_the_store_through_its_webhook(gateway: Gateway) -> None:
    intent_id = await gateway.create("wh-paid")

    await gateway.sdk.v1.payment_intents.confirm_async(intent_id, {"payment_method": "pm_card_visa"})

    order = await gateway.order_when("wh-paid", lambda o: o.status is PaymentStatus.SUCCEEDED, "the payment")
    assert order.amount_received == 2500
    assert "payment_intent.succeeded" in await gateway.applied_events("wh-paid")
    actions = [entry.action for entry in await gateway.store.list_audit("wh-paid")]
    assert "webhook.payment_intent.succeeded" in actions


async def test_a_declined_payment_reaches_the_store_with_its_reason(gateway: Gateway) -> None:
    intent_id = await gateway.create("wh-declined")

    with pytest.raises(stripe.CardError):
        await gateway.sdk.v1.payment_intents.confirm_async(
            intent_id, {"payment_method": "pm_card_chargeDeclined"}
        )

    order = await gateway.order_when("wh-declined", lambda o: o.last_error is not None, "the decline")
    assert order.status is PaymentStatus.REQUIRES_PAYMENT_METHOD
    assert order.last_error is not None
    assert "declined" in order.last_error
    assert "payment_intent.payment_failed" in await gateway.applied_events("wh-declined")


async def test_a_cancellation_made_at_stripe_reaches_the_store(gateway: Gateway) -> None:
    intent_id = await gateway.create("wh-canceled")

    await gateway.sdk.v1.payment_intents.cancel_async(intent_id)

    await gateway.order_when("wh-canceled", lambda o: o.status is PaymentStatus.CANCELED, "the cancellation")
    assert "payment_intent.canceled" in await gateway.applied_events("wh-canceled")


async def test_partial_refunds_from_the_gateway_and_from_the_dashboard_add_up_once(gateway: Gateway) -> None:
    intent_id = await gateway.create("wh-refunds")
    await gateway.sdk.v1.payment_intents.confirm_async(intent_id, {"payment_method": "pm_card_visa"})
    await gateway.order_when("wh-refunds", lambda o: o.status is PaymentStatus.SUCCEEDED, "the payment")

    first = await gateway.call("refund", {"orderId": "wh-refunds", "amount": 500}, admin=True)
    # A refund made in Stripe's Dashboard: only its webhook tells the gateway.
    await gateway.sdk.v1.refunds.create_async({"payment_intent": intent_id, "amount": 700})

    order = await gateway.order_when(
        "wh-refunds", lambda o: o.amount_refunded == 1200, "the Dashboard refund"
    )
    assert first["amountRefunded"] == 500

    async def both_refund_events() -> list[str] | None:
        types = await gateway.applied_events("wh-refunds")
        return types if types.count("charge.refunded") == 2 else None

    await eventually(both_refund_events, "both charge.refunded events")
    order = await gateway.order_when("wh-refunds", lambda o: True, "the order")
    assert order.amount_refunded == 1200  # cumulative totals: each event applied once, never added up
    status = await gateway.status("wh-refunds")
    assert (status["amountRefunded"], status["refundStatus"]) == (1200, "partial")
