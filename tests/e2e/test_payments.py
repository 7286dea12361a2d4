"""The payment procedures end to end: the real @trpc/client (v11, from npm) → the gateway on a real port → the
local Stripe emulator process, with a real SQLite file as the store.

Payments are made the way the offline demo makes them (`gateway.dev_pay`, as `gateway dev pay` does): the phone's
PaymentSheet cannot reach an emulator.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import stripe
from loguru import logger

from gateway.dev_pay import dev_pay
from gateway.settings import Settings
from gateway.store import PaymentStatus, Store, open_store
from tests.support.node import run_calls
from tests.support.payment_settings import payment_settings
from tests.support.server import RunningGateway, running_gateway
from tests.support.stripe_emulator import StripeEmulator
from tests.support.tokens import admin_headers, bearer_headers, token_for

pytestmark = pytest.mark.node

ALICE = bearer_headers("alice")
"""The tests' default caller: a signed-in user without roles."""
ADMIN = admin_headers()


@dataclass
class Payments:
    gateway: RunningGateway
    settings: Settings
    emulator: StripeEmulator
    store: Store
    caller: dict[str, str] = field(default_factory=lambda: dict(ALICE))
    """The headers of calls that name none: by default, alice's bearer token ({}: a caller without a token)."""

    async def call(
        self,
        path: str,
        input: object = None,
        *,
        mutation: bool = False,
        headers: dict[str, str] | None = None,
        link: str = "httpBatchLink",
    ) -> dict[str, Any]:
        [result] = await self.calls([(path, input, mutation)], headers=headers, link=link)
        return result

    async def calls(
        self,
        calls: Sequence[tuple[str, object, bool]],
        *,
        headers: dict[str, str] | None = None,
        link: str = "httpBatchLink",
    ) -> list[dict[str, Any]]:
        spec = [
            {"type": "mutation" if mutation else "query", "path": f"stripe.{path}", "input": input}
            for path, input, mutation in calls
        ]
        return await run_calls(
            self.gateway.trpc_url, spec, headers=self.caller if headers is None else headers, link=link
        )

    async def create(
        self,
        order_id: str,
        amount: int = 2500,
        currency: str = "eur",
        *,
        headers: dict[str, str] | None = None,
        **extra: object,
    ) -> Any:
        result = await self.call(
            "createPaymentIntent",
            {"orderId": order_id, "amount": amount, "currency": currency, **extra},
            mutation=True,
            headers=headers,
        )
        assert result["ok"], result
        return result["data"]

    async def status(self, order_id: str) -> Any:
        result = await self.call("getPaymentStatus", {"orderId": order_id})
        assert result["ok"], result
        return result["data"]

    async def pay(self, order_id: str, card: str = "visa", *, authenticate: bool = True) -> str:
        return await dev_pay(self.settings, order_id, card, authenticate=authenticate)

    def stripe_client(self) -> tuple[stripe.StripeClient, stripe.AIOHTTPClient]:
        return _sdk(self.emulator)


@asynccontextmanager
async def serving_payments(
    emulator: StripeEmulator, tmp_path: Path, **overrides: Any
) -> AsyncIterator[Payments]:
    settings = payment_settings(emulator, tmp_path / "gateway.sqlite3", **overrides)
    async with running_gateway(settings) as gateway:
        store = await open_store(settings.database_url)
        try:
            yield Payments(gateway, settings, emulator, store)
        finally:
            await store.close()


@pytest.fixture
async def payments(fresh_stripe_emulator: StripeEmulator, tmp_path: Path) -> AsyncIterator[Payments]:
    async with serving_payments(fresh_stripe_emulator, tmp_path) as payments:
        yield payments


@pytest.fixture
async def guest_payments(fresh_stripe_emulator: StripeEmulator, tmp_path: Path) -> AsyncIterator[Payments]:
    """A gateway with guest checkout on (GATEWAY_GUEST_CHECKOUT=true): callers without a token may pay."""
    async with serving_payments(fresh_stripe_emulator, tmp_path, gateway_guest_checkout=True) as payments:
        yield payments


def error_of(result: dict[str, Any]) -> dict[str, Any]:
    assert not result["ok"], result
    error: dict[str, Any] = result["error"]
    return error


# -- create ------------------------------------------------------------------------------------------------------


async def test_create_is_idempotent_per_order(payments: Payments) -> None:
    first = await payments.create("order-1", 2500, "EUR")
    again = await payments.create("order-1", 2500, "eur")

    assert first["paymentIntentId"].startswith("pi_")
    assert first["clientSecret"].startswith(first["paymentIntentId"] + "_secret")
    assert (again["paymentIntentId"], again["clientSecret"]) == (
        first["paymentIntentId"],
        first["clientSecret"],
    )
    assert first["amount"] == 2500
    assert first["currency"] == "eur"
    assert first["status"] == "requires_payment_method"
    assert first["publishableKey"] == payments.emulator.publishable_key
    order = await payments.store.get_order("order-1")
    assert order is not None
    assert order.payment_intent_id == first["paymentIntentId"]
    assert [i.id for i in await payments.store.list_payment_intents("order-1")] == [first["paymentIntentId"]]
    actions = [entry.action for entry in await payments.store.list_audit("order-1")]
    assert actions == ["payment_intent.created", "order.created"]
    client, http = payments.stripe_client()
    try:
        intent = await client.v1.payment_intents.retrieve_async(first["paymentIntentId"])
    finally:
        await http.close_async()  # type: ignore[no-untyped-call]
    assert intent.metadata["order_id"] == "order-1"


async def test_fifty_concurrent_creates_for_one_order_make_one_payment_intent(payments: Payments) -> None:
    calls = [("createPaymentIntent", {"orderId": "rush", "amount": 1500, "currency": "eur"}, True)] * 50

    results = await payments.calls(calls, link="httpLink")  # 50 HTTP requests at once

    assert all(r["ok"] for r in results), [r for r in results if not r["ok"]][:1]
    assert len({r["data"]["paymentIntentId"] for r in results}) == 1
    client, http = payments.stripe_client()
    try:
        listed = await client.v1.payment_intents.list_async({"limit": 100})
    finally:
        await http.close_async()  # type: ignore[no-untyped-call]
    assert [pi.id for pi in listed.data if pi.metadata["order_id"] == "rush"] == [
        results[0]["data"]["paymentIntentId"]
    ]


async def test_a_changed_amount_updates_the_unpaid_intent(payments: Payments) -> None:
    first = await payments.create("order-2", 1000)
    changed = await payments.create("order-2", 1800)

    assert changed["paymentIntentId"] == first["paymentIntentId"]
    assert changed["amount"] == 1800
    assert (await payments.status("order-2"))["amount"] == 1800
    client, http = payments.stripe_client()
    try:
        intent = await client.v1.payment_intents.retrieve_async(first["paymentIntentId"])
    finally:
        await http.close_async()  # type: ignore[no-untyped-call]
    assert int(intent.amount) == 1800
    assert "order.amount_changed" in [e.action for e in await payments.store.list_audit("order-2")]


async def test_a_changed_currency_is_a_conflict(payments: Payments) -> None:
    await payments.create("order-cur", 1000, "eur")

    result = await payments.call(
        "createPaymentIntent", {"orderId": "order-cur", "amount": 1000, "currency": "usd"}, mutation=True
    )

    assert error_of(result)["code"] == "CONFLICT"


async def test_a_customer_gets_a_stripe_customer_and_an_ephemeral_key(payments: Payments) -> None:
    customer = {"email": "Ann@Example.com", "name": "Ann"}
    first = await payments.create("order-c1", 1000, customer=customer)
    retried = await payments.create("order-c1", 1000, customer={"email": "ann@example.com"})
    other_order = await payments.create("order-c2", 1000, customer={"email": "ann@example.com"})
    other_user = await payments.create(
        "order-c3", 1000, customer={"email": "ann@example.com"}, headers=bearer_headers("bob")
    )

    assert first["customerId"].startswith("cus_")
    assert first["ephemeralKey"].startswith("ek_")
    assert retried["customerId"] == first["customerId"]
    # A signed-in user keeps one Customer (and her saved cards) across her orders ...
    assert other_order["customerId"] == first["customerId"]
    # ... but nobody else gets it by typing her address: that would hand them an ephemeral key to her cards.
    assert other_user["customerId"] != first["customerId"]
    client, http = payments.stripe_client()
    try:
        at_stripe = await client.v1.customers.retrieve_async(first["customerId"])
    finally:
        await http.close_async()  # type: ignore[no-untyped-call]
    assert (at_stripe.email, at_stripe.name) == ("ann@example.com", "Ann")


async def test_guests_never_share_a_customer_by_email_alone(guest_payments: Payments) -> None:
    """Guests have no identity beyond the order: reusing a Customer by e-mail alone would hand whoever types an
    address an ephemeral key to that person's saved cards, so each guest order gets its own."""
    first = await guest_payments.create("order-g1", 1000, customer={"email": "ann@example.com"}, headers={})
    other_order = await guest_payments.create(
        "order-g2", 1000, customer={"email": "ann@example.com"}, headers={}
    )

    assert first["customerId"].startswith("cus_")
    assert other_order["customerId"] != first["customerId"]


# -- pay, status -------------------------------------------------------------------------------------------------


async def test_a_paid_order_reports_succeeded_and_refuses_a_new_intent(payments: Payments) -> None:
    await payments.create("order-3", 2500)

    assert await payments.pay("order-3") == "succeeded"

    status = await payments.status("order-3")
    assert status["status"] == "succeeded"
    assert status["amountReceived"] == 2500
    assert status["refundStatus"] == "none"
    again = await payments.call(
        "createPaymentIntent", {"orderId": "order-3", "amount": 2500, "currency": "eur"}, mutation=True
    )
    assert error_of(again)["code"] == "CONFLICT"
    assert "already paid" in error_of(again)["message"]


async def test_a_declined_card_leaves_the_order_payable_with_the_reason(payments: Payments) -> None:
    await payments.create("order-4", 2500)

    assert await payments.pay("order-4", "decline") == "requires_payment_method"

    status = await payments.status("order-4")
    assert status["status"] == "requires_payment_method"
    assert "declined" in status["lastPaymentError"]
    assert await payments.pay("order-4", "visa") == "succeeded"


async def test_three_d_secure_completes_after_authentication(payments: Payments) -> None:
    await payments.create("order-5", 2500)

    assert await payments.pay("order-5", "3ds") == "succeeded"


async def test_unknown_orders_are_not_found(payments: Payments) -> None:
    results = await payments.calls(
        [
            ("getPaymentStatus", {"orderId": "nope"}, False),
        ]
    )
    cancel = await payments.call("cancelPaymentIntent", {"orderId": "nope"}, mutation=True)
    refund = await payments.call("refund", {"orderId": "nope"}, mutation=True, headers=ADMIN)

    for result in [*results, cancel, refund]:
        assert error_of(result)["code"] == "NOT_FOUND"
        assert error_of(result)["httpStatus"] == 404


# -- cancel ------------------------------------------------------------------------------------------------------


async def test_cancel_is_idempotent_and_a_new_create_makes_a_new_intent(payments: Payments) -> None:
    first = await payments.create("order-6", 2500)

    canceled = await payments.call("cancelPaymentIntent", {"orderId": "order-6"}, mutation=True)
    twice = await payments.call("cancelPaymentIntent", {"orderId": "order-6"}, mutation=True)

    assert canceled == {"ok": True, "data": {"orderId": "order-6", "status": "canceled"}}
    assert twice == canceled
    assert (await payments.status("order-6"))["status"] == "canceled"
    reopened = await payments.create("order-6", 2500)
    assert reopened["paymentIntentId"] != first["paymentIntentId"]
    assert reopened["status"] == "requires_payment_method"
    assert len(await payments.store.list_payment_intents("order-6")) == 2


async def test_a_paid_order_cannot_be_canceled(payments: Payments) -> None:
    await payments.create("order-7", 2500)
    await payments.pay("order-7")

    result = await payments.call("cancelPaymentIntent", {"orderId": "order-7"}, mutation=True)

    assert error_of(result)["code"] == "CONFLICT"


# -- refunds -----------------------------------------------------------------------------------------------------


async def test_partial_refunds_up_to_the_total_then_nothing_more(payments: Payments) -> None:
    await payments.create("order-8", 2500)
    await payments.pay("order-8")

    def refund(amount: int | None = None) -> Any:
        body: dict[str, Any] = {"orderId": "order-8"}
        if amount is not None:
            body["amount"] = amount
        return payments.call("refund", body, mutation=True, headers=ADMIN)

    first = await refund(1000)
    assert first["ok"], first
    assert first["data"]["amount"] == 1000
    assert first["data"]["amountRefunded"] == 1000
    assert first["data"]["amountRemaining"] == 1500
    assert (await payments.status("order-8"))["refundStatus"] == "partial"

    too_much = error_of(await refund(1600))
    assert too_much["code"] == "BAD_REQUEST"
    assert too_much["data"]["issues"][0]["path"] == ["amount"]
    assert "1500" in too_much["data"]["issues"][0]["message"]

    rest = await refund()
    assert rest["data"]["amount"] == 1500
    assert rest["data"]["amountRemaining"] == 0
    nothing_left = error_of(await refund())
    assert nothing_left["code"] == "CONFLICT"
    status = await payments.status("order-8")
    assert (status["amountRefunded"], status["refundStatus"]) == (2500, "full")
    assert [r.amount for r in await payments.store.list_refunds("order-8")] == [1000, 1500]


async def test_a_refund_with_an_idempotency_key_happens_once(payments: Payments) -> None:
    await payments.create("order-9", 2500)
    await payments.pay("order-9")
    body = {"orderId": "order-9", "amount": 700, "idempotencyKey": "ticket-42"}

    first = await payments.call("refund", body, mutation=True, headers=ADMIN)
    retry = await payments.call("refund", body, mutation=True, headers=ADMIN)
    other = await payments.call("refund", {**body, "amount": 800}, mutation=True, headers=ADMIN)

    assert retry == first
    assert error_of(other)["code"] == "CONFLICT"
    assert [r.amount for r in await payments.store.list_refunds("order-9")] == [700]


async def test_refunds_need_the_admin_role(payments: Payments) -> None:
    await payments.create("order-10", 2500)
    await payments.pay("order-10")

    def refund(headers: dict[str, str]) -> Any:
        return payments.call("refund", {"orderId": "order-10"}, mutation=True, headers=headers)

    no_token = await refund({})
    not_a_jwt = await refund({"authorization": "Bearer nope"})
    forged = await refund(admin_headers(secret="another-secret-that-is-long-enough-0123456789"))
    expired = await refund({"authorization": f"Bearer {token_for('ops-admin', ['admin'], ttl_seconds=-120)}"})
    # the order's owner, and a staff member: signed in, but without the admin role
    owner = await refund(ALICE)
    staff = await refund(bearer_headers("door-staff", ["staff"]))

    for result in (no_token, not_a_jwt, forged, expired):
        assert (error_of(result)["code"], error_of(result)["httpStatus"]) == ("UNAUTHORIZED", 401)
    assert "bad signature" in error_of(forged)["message"]
    assert "expired" in error_of(expired)["message"]
    for result in (owner, staff):
        assert (error_of(result)["code"], error_of(result)["httpStatus"]) == ("FORBIDDEN", 403)
    assert await payments.store.list_refunds("order-10") == []

    made = await refund(ADMIN)

    assert made["ok"], made
    assert [r.amount for r in await payments.store.list_refunds("order-10")] == [2500]


async def test_a_gateway_without_jwt_secret_refuses_every_token(
    fresh_stripe_emulator: StripeEmulator, tmp_path: Path
) -> None:
    """No JWT_SECRET (allowed outside production): nobody can sign in, so refunds are closed to everyone."""
    async with serving_payments(fresh_stripe_emulator, tmp_path, jwt_secret="") as payments:
        refund, create = await payments.calls(
            [
                ("refund", {"orderId": "x"}, True),
                ("createPaymentIntent", {"orderId": "x", "amount": 2500, "currency": "eur"}, True),
            ],
            headers=ADMIN,
        )
        no_token = await payments.call("refund", {"orderId": "x"}, mutation=True, headers={})
        assert await payments.store.get_order("x") is None

    for result in (refund, create, no_token):
        assert (error_of(result)["code"], error_of(result)["httpStatus"]) == ("UNAUTHORIZED", 401)
    assert "no JWT_SECRET is configured" in error_of(refund)["message"]


async def test_an_unpaid_order_cannot_be_refunded(payments: Payments) -> None:
    await payments.create("order-11", 2500)

    result = await payments.call("refund", {"orderId": "order-11"}, mutation=True, headers=ADMIN)

    assert error_of(result)["code"] == "CONFLICT"


# -- validation --------------------------------------------------------------------------------------------------

VALID = {"orderId": "commande 42/été & 100%", "amount": 2500, "currency": "eur"}


@pytest.mark.parametrize(
    ("change", "path"),
    [
        pytest.param({"orderId": ""}, ["orderId"], id="empty-order"),
        pytest.param({"orderId": "   "}, ["orderId"], id="blank-order"),
        pytest.param({"orderId": "a\u0000b"}, ["orderId"], id="nul-in-order"),
        pytest.param({"orderId": "a\nb"}, ["orderId"], id="newline-in-order"),
        pytest.param({"orderId": "a\u0085b"}, ["orderId"], id="c1-control-in-order"),
        pytest.param({"orderId": "x" * 201}, ["orderId"], id="oversize-order"),
        pytest.param({"orderId": 42}, ["orderId"], id="number-order"),
        pytest.param({"amount": 0}, ["amount"], id="zero"),
        pytest.param({"amount": -5}, ["amount"], id="negative"),
        pytest.param({"amount": 10.5}, ["amount"], id="fraction"),
        pytest.param({"amount": "2500"}, ["amount"], id="string-amount"),
        pytest.param({"amount": 100_000_000}, ["amount"], id="nine-digits"),
        pytest.param({"amount": 49}, ["amount"], id="below-eur-minimum"),
        pytest.param({"currency": "eu"}, ["currency"], id="two-letters"),
        pytest.param({"currency": "xyz"}, ["currency"], id="unknown-currency"),
        pytest.param({"currency": "kwd", "amount": 1005}, ["amount"], id="three-decimal-not-rounded"),
        pytest.param(
            {"metadata": {f"k{i}": "v" for i in range(50)}}, ["metadata"], id="too-many-metadata-keys"
        ),
        pytest.param({"metadata": {"k" * 41: "v"}}, ["metadata"], id="long-metadata-key"),
        pytest.param({"metadata": {"k": "v" * 501}}, ["metadata", "k"], id="long-metadata-value"),
        pytest.param({"metadata": {"order_id": "other"}}, ["metadata", "order_id"], id="reserved-metadata"),
        pytest.param({"customer": {"email": "not-an-email"}}, ["customer", "email"], id="bad-email"),
    ],
)
async def test_invalid_create_inputs_are_bad_request_with_the_field_path(
    payments: Payments, change: dict[str, Any], path: list[str]
) -> None:
    result = await payments.call("createPaymentIntent", {**VALID, **change}, mutation=True)

    error = error_of(result)
    assert error["code"] == "BAD_REQUEST"
    assert error["httpStatus"] == 400
    assert [issue["path"][: len(path)] for issue in error["data"]["issues"]] == [path]
    assert await payments.store.get_order(str(change.get("orderId", VALID["orderId"]))) is None


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({}, id="accents-slash-ampersand-percent"),
        pytest.param({"currency": "jpy", "amount": 50}, id="zero-decimal-currency"),
        pytest.param({"currency": "kwd", "amount": 1000}, id="three-decimal-currency"),
        pytest.param({"amount": 99_999_999}, id="eight-digits"),
        pytest.param({"metadata": {f"k{i}": "v" * 500 for i in range(49)}}, id="metadata-at-the-limits"),
    ],
)
async def test_valid_create_inputs_are_accepted(payments: Payments, change: dict[str, Any]) -> None:
    result = await payments.call("createPaymentIntent", {**VALID, **change}, mutation=True)

    assert result["ok"], result
    assert result["data"]["orderId"] == VALID["orderId"]
    assert result["data"]["paymentIntentId"].startswith("pi_")


# -- Apple Pay / Google Pay --------------------------------------------------------------------------------------


async def test_native_pay_availability_follows_stripes_domain_registration(payments: Payments) -> None:
    await register_domain(payments.emulator, "shop.example.com")

    registered, unknown, *invalid = await payments.calls(
        [
            ("checkNativePayAvailability", {"domain": "Shop.Example.com"}, False),
            ("checkNativePayAvailability", {"domain": "other.example.com"}, False),
            ("checkNativePayAvailability", {"domain": "not a host"}, False),
            ("checkNativePayAvailability", {"domain": "shop.example.com\n"}, False),
            ("checkNativePayAvailability", {"domain": "-shop.example.com"}, False),
            ("checkNativePayAvailability", {"domain": "localhost"}, False),
            ("checkNativePayAvailability", {"domain": "https://shop.example.com"}, False),
        ]
    )

    assert registered == {"ok": True, "data": {"applePay": True, "googlePay": True}}
    assert unknown == {"ok": True, "data": {"applePay": False, "googlePay": False}}
    for result in invalid:
        assert error_of(result)["code"] == "BAD_REQUEST"
        assert error_of(result)["data"]["issues"][0]["path"] == ["domain"]


async def test_an_inactive_wallet_is_not_available(
    fresh_stripe_emulator: StripeEmulator, tmp_path: Path
) -> None:
    settings = payment_settings(
        fresh_stripe_emulator, tmp_path / "db.sqlite3", gateway_native_pay_cache_ttl=0
    )
    await register_domain(fresh_stripe_emulator, "pay.example.com")
    fresh_stripe_emulator.set_domain_wallets("pay.example.com", apple_pay="inactive")
    call = [
        {"type": "query", "path": "stripe.checkNativePayAvailability", "input": {"domain": "pay.example.com"}}
    ]
    async with running_gateway(settings) as gateway:
        [result] = await run_calls(gateway.trpc_url, call)
    assert result == {"ok": True, "data": {"applePay": False, "googlePay": True}}


async def test_native_pay_serves_the_last_known_answer_while_stripe_is_unreachable(
    fresh_stripe_emulator: StripeEmulator, tmp_path: Path
) -> None:
    settings = payment_settings(
        fresh_stripe_emulator, tmp_path / "db.sqlite3", gateway_native_pay_cache_ttl=0
    )
    await register_domain(fresh_stripe_emulator, "shop.example.com")

    def ask(domain: str) -> list[dict[str, Any]]:
        return [{"type": "query", "path": "stripe.checkNativePayAvailability", "input": {"domain": domain}}]

    events: list[str] = []
    sink = logger.add(lambda message: events.append(message.record["message"]), level="WARNING")
    async with running_gateway(settings) as gateway:
        [before] = await run_calls(gateway.trpc_url, ask("shop.example.com"))
        fresh_stripe_emulator.stop()
        try:
            [during] = await run_calls(gateway.trpc_url, ask("shop.example.com"))
            [never_seen] = await run_calls(gateway.trpc_url, ask("new.example.com"))
        finally:
            fresh_stripe_emulator.start()
            logger.remove(sink)

    assert before == {"ok": True, "data": {"applePay": True, "googlePay": True}}
    assert during == before  # cache TTL 0: Stripe was asked, failed, and the last answer was served
    # The last known registration list answers for every domain: this one was not in it.
    assert never_seen == {"ok": True, "data": {"applePay": False, "googlePay": False}}
    assert "native_pay_served_stale" in events


async def test_native_pay_without_any_known_answer_is_bad_gateway_while_stripe_is_unreachable(
    fresh_stripe_emulator: StripeEmulator, tmp_path: Path
) -> None:
    settings = payment_settings(fresh_stripe_emulator, tmp_path / "db.sqlite3")
    call = [
        {"type": "query", "path": "stripe.checkNativePayAvailability", "input": {"domain": "a.example.com"}}
    ]
    async with running_gateway(settings) as gateway:
        fresh_stripe_emulator.stop()
        try:
            [result] = await run_calls(gateway.trpc_url, call)
        finally:
            fresh_stripe_emulator.start()
    assert error_of(result)["code"] == "BAD_GATEWAY"


async def register_domain(emulator: StripeEmulator, domain: str) -> None:
    """Register `domain` for Apple Pay / Google Pay at (emulated) Stripe, as the dashboard does."""
    client, http = _sdk(emulator)
    try:
        await client.v1.payment_method_domains.create_async({"domain_name": domain, "enabled": True})
    finally:
        await http.close_async()  # type: ignore[no-untyped-call]


def _sdk(emulator: StripeEmulator) -> tuple[stripe.StripeClient, stripe.AIOHTTPClient]:
    http = stripe.AIOHTTPClient(timeout=10)
    client = stripe.StripeClient(
        emulator.secret_key,
        http_client=http,
        base_addresses={"api": emulator.api_base},
        max_network_retries=0,
    )
    return client, http


# -- Stripe unreachable ------------------------------------------------------------------------------------------


async def test_stripe_unreachable_is_a_clean_bad_gateway_and_nothing_half_written(payments: Payments) -> None:
    await payments.create("before", 2500)
    payments.emulator.stop()
    try:
        create = await payments.call(
            "createPaymentIntent", {"orderId": "during", "amount": 2500, "currency": "eur"}, mutation=True
        )
        refund = await payments.call("refund", {"orderId": "before"}, mutation=True, headers=ADMIN)
        cancel = await payments.call("cancelPaymentIntent", {"orderId": "before"}, mutation=True)
    finally:
        payments.emulator.start()

    for result in (create, cancel):
        error = error_of(result)
        assert error["code"] == "BAD_GATEWAY"
        assert error["httpStatus"] == 502
        assert error["data"]["stripe"] == {"kind": "connection"}
        assert "stack" not in error["data"] or "sk_" not in error["data"]["stack"]
    assert error_of(refund)["code"] == "BAD_GATEWAY"
    # The order Stripe never heard of is a claim, `creating`, with no PaymentIntent and no refund or audit line
    # saying otherwise; the untouched one is as it was.
    during = await payments.store.get_order("during")
    assert during is not None
    assert (during.status, during.payment_intent_id) == (PaymentStatus.CREATING, None)
    assert await payments.store.list_payment_intents("during") == []
    assert [e.action for e in await payments.store.list_audit("during")] == ["order.created"]
    before = await payments.store.get_order("before")
    assert before is not None
    assert before.status is PaymentStatus.REQUIRES_PAYMENT_METHOD
    assert await payments.store.list_refunds("before") == []
