"""The patched Stripe emulator, driven through the async stripe-python SDK exactly as production code drives Stripe.

One test per gap the patch layer closes in localstripe (see `emulator/README.md`), plus the test support's own
promise: a stopped emulator is an unreachable Stripe, and it comes back on the same address.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import stripe
from aiohttp import web

from tests.support.stripe_emulator import StripeEmulator

API_VERSION = "2024-06-20"
WEBHOOK_TIMEOUT = 10.0
"""localstripe delivers each event about 1 s after it happens."""


@pytest.fixture
async def http_client() -> AsyncIterator[stripe.AIOHTTPClient]:
    http = stripe.AIOHTTPClient(timeout=10)
    yield http
    await http.close_async()  # type: ignore[no-untyped-call]


@pytest.fixture
def client(fresh_stripe_emulator: StripeEmulator, http_client: stripe.AIOHTTPClient) -> stripe.StripeClient:
    return stripe.StripeClient(
        fresh_stripe_emulator.secret_key,
        http_client=http_client,
        stripe_version=API_VERSION,
        max_network_retries=0,
        base_addresses={"api": fresh_stripe_emulator.api_base},
    )


class WebhookReceiver:
    """An endpoint on 127.0.0.1 that keeps every delivery `stripe.Webhook.construct_event` accepts."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.events: list[stripe.Event] = []
        self.rejected: list[str] = []
        self._arrived = asyncio.Condition()

    async def handle(self, request: web.Request) -> web.Response:
        payload = await request.read()
        try:
            event = stripe.Webhook.construct_event(
                payload, request.headers.get("Stripe-Signature", ""), self.secret
            )
        except stripe.SignatureVerificationError as error:
            self.rejected.append(str(error))
            return web.Response(status=400)
        async with self._arrived:
            self.events.append(event)
            self._arrived.notify_all()
        return web.Response()

    async def wait_for(self, event_type: str, object_id: str, count: int = 1) -> list[stripe.Event]:
        """The first `count` events of that type about that object, waiting for them to arrive."""

        def matching() -> list[stripe.Event]:
            return [e for e in self.events if e.type == event_type and e.data.object["id"] == object_id]

        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(lambda: len(matching()) >= count), WEBHOOK_TIMEOUT)
        return matching()[:count]


@pytest.fixture
async def webhooks(fresh_stripe_emulator: StripeEmulator) -> AsyncIterator[WebhookReceiver]:
    receiver = WebhookReceiver(fresh_stripe_emulator.webhook_secret)
    app = web.Application()
    app.router.add_post("/webhooks/stripe", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    webhook_id = f"test-{uuid.uuid4().hex}"
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        fresh_stripe_emulator.register_webhook(webhook_id, f"http://127.0.0.1:{port}/webhooks/stripe")
        yield receiver
    finally:
        fresh_stripe_emulator.unregister_webhook(webhook_id)
        await runner.cleanup()
    assert receiver.rejected == []


def key() -> str:
    return f"test-{uuid.uuid4().hex}"


async def paid_intent(client: stripe.StripeClient, amount: int = 2000) -> stripe.PaymentIntent:
    return await client.v1.payment_intents.create_async(
        {"amount": amount, "currency": "eur", "payment_method": "pm_card_visa", "confirm": True},
        {"idempotency_key": key()},
    )


async def test_create_accepts_and_returns_production_parameters(client: stripe.StripeClient) -> None:
    created = await client.v1.payment_intents.create_async(
        {
            "amount": 1999,
            "currency": "EUR",
            "automatic_payment_methods": {"enabled": True},
            "description": "Order 42",
            "receipt_email": "buyer@example.com",
            "setup_future_usage": "off_session",
            "statement_descriptor_suffix": "ORDER 42",
            "metadata": {"order_id": "42"},
        },
        {"idempotency_key": key()},
    )
    intent = await client.v1.payment_intents.retrieve_async(created.id)

    assert intent.status == "requires_payment_method"
    assert (intent.amount, intent.currency) == (1999, "eur")
    assert intent.automatic_payment_methods is not None
    assert intent.automatic_payment_methods.enabled is True
    assert intent.payment_method_types == ["card"]
    assert intent.description == "Order 42"
    assert intent.receipt_email == "buyer@example.com"
    assert intent.setup_future_usage == "off_session"
    assert intent.statement_descriptor_suffix == "ORDER 42"
    assert intent.metadata.to_dict() == {"order_id": "42"}
    assert intent.client_secret is not None
    assert intent.client_secret.startswith(intent.id + "_secret_")


async def test_shapes_are_real_stripes_and_update_coerces(client: stripe.StripeClient) -> None:
    created = await client.v1.payment_intents.create_async(
        {"amount": 1000, "currency": "eur", "metadata": {"a": "1", "b": "2"}}, {"idempotency_key": key()}
    )
    updated = await client.v1.payment_intents.update_async(
        created.id,
        {"amount": 2500, "description": "now 25 EUR", "metadata": {"b": "", "c": "3"}},
        {"idempotency_key": key()},
    )
    assert updated.amount == 2500  # an int, not the form string "2500"
    assert updated.description == "now 25 EUR"
    assert updated.metadata.to_dict() == {"a": "1", "c": "3"}

    await client.v1.payment_intents.update_async(created.id, {"payment_method": "pm_card_visa"})
    confirmed = await client.v1.payment_intents.confirm_async(created.id)
    assert confirmed.status == "succeeded"
    assert isinstance(confirmed.latest_charge, str)
    assert confirmed.latest_charge.startswith("ch_")
    assert confirmed.amount_received == 2500
    assert "charges" not in confirmed

    expanded = await client.v1.payment_intents.retrieve_async(created.id, {"expand": ["latest_charge"]})
    assert isinstance(expanded.latest_charge, stripe.Charge)
    assert expanded.latest_charge.amount == 2500

    with pytest.raises(stripe.InvalidRequestError) as raised:
        await client.v1.payment_intents.update_async(created.id, {"amount": 3000})
    assert raised.value.code == "payment_intent_unexpected_state"


async def test_idempotent_replay_and_key_reuse_with_other_parameters(client: stripe.StripeClient) -> None:
    idempotency_key = key()
    params: stripe.params.PaymentIntentCreateParams = {
        "amount": 1500,
        "currency": "eur",
        "metadata": {"order_id": "7"},
    }
    first = await client.v1.payment_intents.create_async(params, {"idempotency_key": idempotency_key})
    replay = await client.v1.payment_intents.create_async(params, {"idempotency_key": idempotency_key})

    assert replay.id == first.id
    assert replay.last_response is not None
    assert replay.last_response.headers["Idempotent-Replayed"] == "true"
    with pytest.raises(stripe.IdempotencyError):
        await client.v1.payment_intents.create_async(
            {"amount": 1600, "currency": "eur", "metadata": {"order_id": "7"}},
            {"idempotency_key": idempotency_key},
        )
    listed = await client.v1.payment_intents.list_async({"limit": 100})
    assert [i.id for i in listed.data] == [first.id]


async def test_concurrent_requests_with_one_key_execute_once(client: stripe.StripeClient) -> None:
    idempotency_key = key()
    intents = await asyncio.gather(
        *(
            client.v1.payment_intents.create_async(
                {"amount": 1500, "currency": "eur"}, {"idempotency_key": idempotency_key}
            )
            for _ in range(20)
        )
    )

    assert len({i.id for i in intents}) == 1
    listed = await client.v1.payment_intents.list_async({"limit": 100})
    assert len(listed.data) == 1


async def test_confirm_with_payment_method_and_return_url(client: stripe.StripeClient) -> None:
    created = await client.v1.payment_intents.create_async(
        {"amount": 2000, "currency": "eur"}, {"idempotency_key": key()}
    )
    confirmed = await client.v1.payment_intents.confirm_async(
        created.id,
        {"payment_method": "pm_card_visa", "return_url": "https://shop.example/return"},
        {"idempotency_key": key()},
    )

    assert confirmed.status == "succeeded"
    assert confirmed.payment_method is not None
    assert confirmed.payment_method != "pm_card_visa"
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await client.v1.payment_intents.confirm_async(created.id)
    assert raised.value.code == "payment_intent_unexpected_state"


@pytest.mark.parametrize(
    ("payment_method", "decline_code"),
    [
        ("pm_card_chargeDeclined", "generic_decline"),
        ("pm_card_visa_chargeDeclined", "generic_decline"),
        ("pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds"),
    ],
)
async def test_decline_cards_raise_card_error_with_decline_code(
    client: stripe.StripeClient, payment_method: str, decline_code: str
) -> None:
    with pytest.raises(stripe.CardError) as raised:
        await client.v1.payment_intents.create_async(
            {"amount": 2000, "currency": "eur", "payment_method": payment_method, "confirm": True},
            {"idempotency_key": key()},
        )
    error = raised.value
    assert (error.http_status, error.code) == (402, "card_declined")
    assert error.error is not None
    assert error.error.decline_code == decline_code
    assert error.error.payment_intent is not None
    intent_id = error.error.payment_intent.id

    declined = await client.v1.payment_intents.retrieve_async(intent_id)
    assert declined.status == "requires_payment_method"
    assert declined.last_payment_error is not None
    assert declined.last_payment_error.decline_code == decline_code
    retried = await client.v1.payment_intents.confirm_async(intent_id, {"payment_method": "pm_card_visa"})
    assert retried.status == "succeeded"


async def test_three_d_secure_requires_action_then_authenticates(
    client: stripe.StripeClient, fresh_stripe_emulator: StripeEmulator
) -> None:
    created = await client.v1.payment_intents.create_async(
        {
            "amount": 2000,
            "currency": "eur",
            "payment_method": "pm_card_threeDSecure2Required",
            "confirm": True,
        },
        {"idempotency_key": key()},
    )
    assert created.status == "requires_action"
    assert created.next_action is not None
    assert created.next_action.type == "use_stripe_sdk"

    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{fresh_stripe_emulator.api_base}/v1/payment_intents/{created.id}/_authenticate",
            data={
                "client_secret": created.client_secret or "",
                "success": "true",
                "key": fresh_stripe_emulator.publishable_key,
            },
        ) as response,
    ):
        assert response.status == 200

    assert (await client.v1.payment_intents.retrieve_async(created.id)).status == "succeeded"


async def test_cancel_with_reason(client: stripe.StripeClient) -> None:
    created = await client.v1.payment_intents.create_async(
        {"amount": 2000, "currency": "eur"}, {"idempotency_key": key()}
    )
    canceled = await client.v1.payment_intents.cancel_async(
        created.id, {"cancellation_reason": "abandoned"}, {"idempotency_key": key()}
    )

    assert canceled.status == "canceled"
    assert canceled.cancellation_reason == "abandoned"
    assert canceled.canceled_at is not None
    assert canceled.canceled_at >= created.created
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await client.v1.payment_intents.cancel_async(created.id)
    assert raised.value.code == "payment_intent_unexpected_state"


async def test_refunds_default_to_what_is_left_and_over_refunds_fail(client: stripe.StripeClient) -> None:
    intent = await paid_intent(client, 2000)
    first = await client.v1.refunds.create_async(
        {
            "payment_intent": intent.id,
            "amount": 500,
            "reason": "requested_by_customer",
            "metadata": {"n": "1"},
        },
        {"idempotency_key": key()},
    )
    with pytest.raises(stripe.InvalidRequestError) as too_large:
        await client.v1.refunds.create_async({"payment_intent": intent.id, "amount": 1501})
    rest = await client.v1.refunds.create_async({"payment_intent": intent.id}, {"idempotency_key": key()})
    with pytest.raises(stripe.InvalidRequestError) as already:
        await client.v1.refunds.create_async({"payment_intent": intent.id})

    assert (first.amount, first.reason) == (500, "requested_by_customer")
    assert first.metadata is not None
    assert first.metadata.to_dict() == {"n": "1"}
    assert (first.payment_intent, first.status) == (intent.id, "succeeded")
    assert too_large.value.code == "amount_too_large"
    assert too_large.value.error is not None
    assert too_large.value.error.param == "amount"
    assert rest.amount == 1500
    assert already.value.code == "charge_already_refunded"
    listed = await client.v1.refunds.list_async({"payment_intent": intent.id})
    assert sorted(r.amount for r in listed.data) == [500, 1500]
    assert (await client.v1.refunds.retrieve_async(first.id)).amount == 500
    assert isinstance(intent.latest_charge, str)
    charge = await client.v1.charges.retrieve_async(intent.latest_charge)
    assert (charge.amount_refunded, charge.refunded) == (2000, True)


async def test_refund_of_an_unpaid_intent_is_a_clean_400(client: stripe.StripeClient) -> None:
    created = await client.v1.payment_intents.create_async(
        {"amount": 2000, "currency": "eur"}, {"idempotency_key": key()}
    )
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await client.v1.refunds.create_async({"payment_intent": created.id}, {"idempotency_key": key()})

    assert raised.value.http_status == 400
    assert raised.value.error is not None
    assert raised.value.error.param == "payment_intent"
    assert "does not have a successful charge to refund" in str(raised.value.user_message)
    assert (await client.v1.refunds.list_async({"payment_intent": created.id})).data == []


async def test_payment_method_domains(
    client: stripe.StripeClient, fresh_stripe_emulator: StripeEmulator
) -> None:
    shop = await client.v1.payment_method_domains.create_async({"domain_name": "shop.example"})
    blog = await client.v1.payment_method_domains.create_async(
        {"domain_name": "blog.example", "enabled": False}
    )

    assert shop.id.startswith("pmd_")
    assert shop.enabled is True
    assert (shop.apple_pay.status, shop.google_pay.status) == ("active", "active")
    by_name = await client.v1.payment_method_domains.list_async({"domain_name": "shop.example"})
    assert [d.id for d in by_name.data] == [shop.id]
    disabled = await client.v1.payment_method_domains.list_async({"enabled": False})
    assert [d.id for d in disabled.data] == [blog.id]
    assert len((await client.v1.payment_method_domains.list_async()).data) == 2

    enabled = await client.v1.payment_method_domains.update_async(blog.id, {"enabled": True})
    assert enabled.enabled is True
    fresh_stripe_emulator.set_domain_wallets(
        "shop.example", apple_pay="inactive", error_message="not verified"
    )
    shop = await client.v1.payment_method_domains.retrieve_async(shop.id)
    assert shop.apple_pay.status == "inactive"
    assert shop.apple_pay.status_details is not None
    assert shop.apple_pay.status_details.error_message == "not verified"
    assert shop.google_pay.status == "active"


async def test_ephemeral_keys(client: stripe.StripeClient, fresh_stripe_emulator: StripeEmulator) -> None:
    customer = await client.v1.customers.create_async(
        {"email": "buyer@example.com"}, {"idempotency_key": key()}
    )
    ephemeral = await client.v1.ephemeral_keys.create_async(
        {"customer": customer.id}, {"stripe_version": "2020-08-27", "idempotency_key": key()}
    )

    assert ephemeral.id.startswith("ephkey_")
    assert ephemeral.secret is not None
    assert ephemeral.secret.startswith("ek_test_")
    assert ephemeral.to_dict()["associated_objects"] == [{"id": customer.id, "type": "customer"}]
    assert ephemeral.expires > ephemeral.created
    assert ephemeral.livemode is False
    deleted = await client.v1.ephemeral_keys.delete_async(ephemeral.id)
    assert deleted.id == ephemeral.id
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await client.v1.ephemeral_keys.create_async(
            {"customer": "cus_missing"}, {"stripe_version": API_VERSION}
        )
    assert raised.value.code == "resource_missing"
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{fresh_stripe_emulator.api_base}/v1/ephemeral_keys",
            data={"customer": customer.id},
            headers={"Authorization": f"Bearer {fresh_stripe_emulator.secret_key}"},
        ) as response,
    ):
        assert response.status == 400  # no Stripe-Version: the key's API version must be explicit
        assert "Stripe-Version" in (await response.json())["error"]["message"]


async def test_customers_list_by_email_newest_first(client: stripe.StripeClient) -> None:
    first = await client.v1.customers.create_async({"email": "a@example.com"})
    second = await client.v1.customers.create_async({"email": "a@example.com"})
    await client.v1.customers.create_async({"email": "b@example.com"})

    listed = await client.v1.customers.list_async({"email": "a@example.com"})
    assert [c.id for c in listed.data] == [second.id, first.id]
    assert (await client.v1.customers.retrieve_async(first.id)).email == "a@example.com"


async def test_webhooks_are_signed_and_cover_the_gateways_events(
    client: stripe.StripeClient, webhooks: WebhookReceiver
) -> None:
    paid = await paid_intent(client, 2000)
    with pytest.raises(stripe.CardError) as declined:
        await client.v1.payment_intents.create_async(
            {"amount": 2000, "currency": "eur", "payment_method": "pm_card_chargeDeclined", "confirm": True}
        )
    assert declined.value.error is not None
    assert declined.value.error.payment_intent is not None
    failed_id = declined.value.error.payment_intent.id
    canceled = await client.v1.payment_intents.create_async({"amount": 2000, "currency": "eur"})
    await client.v1.payment_intents.cancel_async(
        canceled.id, {"cancellation_reason": "requested_by_customer"}
    )
    refunds = [
        await client.v1.refunds.create_async({"payment_intent": paid.id, "amount": 500}),
        await client.v1.refunds.create_async({"payment_intent": paid.id}),
    ]
    charge_id = paid.latest_charge
    assert isinstance(charge_id, str)

    succeeded, failed, cancel, charge_refunded, *refund_created = await asyncio.gather(
        webhooks.wait_for("payment_intent.succeeded", paid.id),
        webhooks.wait_for("payment_intent.payment_failed", failed_id),
        webhooks.wait_for("payment_intent.canceled", canceled.id),
        webhooks.wait_for("charge.refunded", charge_id, count=2),
        *(webhooks.wait_for("refund.created", refund.id) for refund in refunds),
    )

    assert succeeded[0].data.object["status"] == "succeeded"
    assert succeeded[0].data.object["latest_charge"] == charge_id
    assert failed[0].data.object["last_payment_error"]["decline_code"] == "generic_decline"
    assert cancel[0].data.object["cancellation_reason"] == "requested_by_customer"
    cumulative = sorted(
        (e.data.object["amount_refunded"], e.data.object["refunded"]) for e in charge_refunded
    )
    assert cumulative == [(500, False), (2000, True)]
    assert [events[0].data.object["amount"] for events in refund_created] == [500, 1500]
    assert all(e.api_version == API_VERSION for e in webhooks.events)


async def test_reset_forgets_keys_domains_and_objects(
    client: stripe.StripeClient, fresh_stripe_emulator: StripeEmulator
) -> None:
    idempotency_key = key()
    before = await client.v1.payment_intents.create_async(
        {"amount": 1500, "currency": "eur"}, {"idempotency_key": idempotency_key}
    )
    await client.v1.payment_method_domains.create_async({"domain_name": "shop.example"})
    customer = await client.v1.customers.create_async({"email": "buyer@example.com"})
    ephemeral = await client.v1.ephemeral_keys.create_async({"customer": customer.id})

    fresh_stripe_emulator.reset()

    after = await client.v1.payment_intents.create_async(
        {"amount": 1600, "currency": "eur"}, {"idempotency_key": idempotency_key}
    )
    assert after.id != before.id
    assert (await client.v1.payment_method_domains.list_async()).data == []
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await client.v1.payment_intents.retrieve_async(before.id)
    assert raised.value.code == "resource_missing"
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await client.v1.ephemeral_keys.delete_async(ephemeral.id)
    assert raised.value.code == "resource_missing"


def localstripe_pickle_mtime() -> int | None:
    """localstripe pickles its whole store to this file, shared by every instance, on every write."""
    pickle = Path("/tmp/localstripe.pickle")
    return pickle.stat().st_mtime_ns if pickle.exists() else None


async def test_nothing_is_pickled_to_tmp(client: stripe.StripeClient) -> None:
    before = localstripe_pickle_mtime()

    await paid_intent(client)

    assert localstripe_pickle_mtime() == before


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (
            lambda c: c.v1.payment_intents.create_async({"amount": 2000, "currency": "eur", "foo": "1"}),
            "parameter_unknown",
        ),
        (lambda c: c.v1.payment_intents.create_async({"amount": 10, "currency": "eur"}), "amount_too_small"),
        (lambda c: c.v1.payment_intents.retrieve_async("pi_missing"), "resource_missing"),
        (lambda c: c.v1.apple_pay_domains.list_async(), None),  # not emulated: a JSON 404, not a text page
    ],
)
async def test_errors_are_stripe_shaped(
    client: stripe.StripeClient, call: Callable[[stripe.StripeClient], Any], code: str | None
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await call(client)
    assert raised.value.code == code


async def test_stopped_emulator_is_unreachable_then_restarts_on_its_port(
    client: stripe.StripeClient, fresh_stripe_emulator: StripeEmulator
) -> None:
    api_base = fresh_stripe_emulator.api_base
    fresh_stripe_emulator.stop()
    try:
        assert not fresh_stripe_emulator.is_running
        with pytest.raises(stripe.APIConnectionError):
            await client.v1.payment_intents.create_async({"amount": 2000, "currency": "eur"})
    finally:
        fresh_stripe_emulator.start()

    assert fresh_stripe_emulator.api_base == api_base
    created = await client.v1.payment_intents.create_async({"amount": 2000, "currency": "eur"})
    assert created.status == "requires_payment_method"
