"""Payment QR codes end to end (gateway on a real port, the Stripe emulator, a real SQLite file): the owner of a
paid order gets a signed code, staff verify scans of it; tampered, foreign-key, unpaid, refunded and reused codes
are refused with the reason; rolling QR_SECRET keeps issued codes valid."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest

from gateway.dev_pay import dev_pay
from gateway.http.app import METRICS
from gateway.payments import Actor, PaymentService
from gateway.qr import QrSigner
from gateway.settings import Settings
from gateway.store import open_store
from gateway.stripe_api import StripeApi
from tests.support.payment_settings import payment_settings
from tests.support.server import RunningGateway, running_gateway
from tests.support.stripe_emulator import StripeEmulator
from tests.support.tokens import TEST_QR_SECRET, admin_headers, bearer_headers, staff_headers

ALICE = bearer_headers("alice")
BOB = bearer_headers("bob")
STAFF = staff_headers("door-staff")
OLD_QR_KEY = "an-older-qr-key-that-is-being-rolled-out-0123"


class Shop:
    def __init__(self, gateway: RunningGateway, settings: Settings, http: aiohttp.ClientSession) -> None:
        self.gateway, self.settings, self.http = gateway, settings, http

    async def call(self, path: str, input: object, headers: dict[str, str], *, mutation: bool = False) -> Any:
        url = f"{self.gateway.trpc_url}/stripe.{path}"
        if mutation:
            response = await self.http.post(url, json=input, headers=headers)
        else:
            params = {"input": msgspec.json.encode(input).decode()}
            response = await self.http.get(url, params=params, headers=headers)
        async with response:
            body = await response.json()
        return body["result"]["data"] if "result" in body else body["error"]

    async def paid_order(self, order_id: str, headers: dict[str, str] = ALICE) -> None:
        order = {"orderId": order_id, "amount": 2500, "currency": "eur"}
        assert "paymentIntentId" in await self.call("createPaymentIntent", order, headers, mutation=True)
        await dev_pay(self.settings, order_id, "visa")

    async def sync(self, order_id: str) -> None:
        """Record the order's payment now, as Stripe's webhook would."""
        store = await open_store(self.settings.database_url)
        stripe = StripeApi(self.settings)
        try:
            await PaymentService(store, stripe, self.settings).sync_order(order_id, Actor("test"))
        finally:
            await stripe.close()
            await store.close()

    async def qr(self, order_id: str, headers: dict[str, str] = ALICE) -> Any:
        return await self.call("getPaymentQrCode", {"orderId": order_id}, headers)

    async def verify(self, token: str, headers: dict[str, str] = STAFF) -> Any:
        return await self.call("verifyPaymentQrCode", {"token": token}, headers, mutation=True)


@asynccontextmanager
async def _shop(settings: Settings) -> AsyncIterator[Shop]:
    async with running_gateway(settings) as gateway, aiohttp.ClientSession() as http:
        yield Shop(gateway, settings, http)


@pytest.fixture
def settings(fresh_stripe_emulator: StripeEmulator, tmp_path: Path) -> Settings:
    return payment_settings(fresh_stripe_emulator, tmp_path / "gateway.sqlite3")


@pytest.fixture
async def shop(settings: Settings) -> AsyncIterator[Shop]:
    async with _shop(settings) as running:
        yield running


def _code(error: Any) -> str:
    return str(error["data"]["code"])


async def test_the_owner_of_a_paid_order_gets_a_code_staff_verify(shop: Shop) -> None:
    await shop.paid_order("order-q1")
    code = await shop.qr("order-q1")
    assert code["orderId"] == "order-q1"
    assert code["token"].startswith("P1.")
    assert code["svg"].startswith("<svg")
    assert code["svg"].rstrip().endswith("</svg>")
    assert "alice" not in code["token"]  # nothing personal in the code
    assert code == await shop.qr("order-q1")  # the same code every time

    verdict = await shop.verify(code["token"])
    assert verdict == {
        "valid": True,
        "reason": None,
        "orderId": "order-q1",
        "amount": 2500,
        "currency": "eur",
        "amountRefunded": 0,
        "redeemedAt": None,
    }
    assert await shop.verify(code["token"]) == verdict  # without single use, a code verifies again


async def test_only_the_owner_gets_the_code_and_only_once_paid(shop: Shop) -> None:
    await shop.call(
        "createPaymentIntent", {"orderId": "order-q2", "amount": 900, "currency": "eur"}, ALICE, mutation=True
    )
    assert _code(await shop.qr("order-q2")) == "CONFLICT"
    await dev_pay(shop.settings, "order-q2", "visa")
    await shop.sync("order-q2")  # as the webhook would: the status was checked with Stripe less than 2 s ago
    assert _code(await shop.qr("order-q2", BOB)) == "NOT_FOUND"
    assert _code(await shop.qr("order-q2", {})) == "UNAUTHORIZED"
    assert "token" in await shop.qr("order-q2", admin_headers())


async def test_only_staff_verify(shop: Shop) -> None:
    await shop.paid_order("order-q3")
    token = (await shop.qr("order-q3"))["token"]
    assert _code(await shop.verify(token, ALICE)) == "FORBIDDEN"
    assert _code(await shop.verify(token, {})) == "UNAUTHORIZED"
    assert (await shop.verify(token, admin_headers()))["valid"] is True


async def test_tampered_and_foreign_codes_are_refused_with_the_reason(shop: Shop) -> None:
    await shop.paid_order("order-q4")
    await shop.paid_order("order-q5", BOB)
    token = (await shop.qr("order-q4"))["token"]
    version, kid, payload, tag = token.split(".")
    other_payload = (await shop.qr("order-q5", BOB))["token"].split(".")[2]
    swapped_tag = tag[:-2] + ("AA" if not tag.endswith("AA") else "BB")
    foreign = QrSigner.from_secret("a-key-this-gateway-has-never-held-0123456789").sign("order-q4")
    cases = {
        f"{version}.{kid}.{other_payload}.{tag}": "bad_signature",  # another order's id under this order's tag
        f"{version}.{kid}.{payload}.{swapped_tag}": "bad_signature",
        foreign: "unknown_key",
        "not a payment code": "malformed",
        f"P2.{kid}.{payload}.{tag}": "malformed",
        token + "\n": "malformed",
    }
    for scanned, reason in cases.items():
        verdict = await shop.verify(scanned)
        assert (verdict["valid"], verdict["reason"], verdict["orderId"]) == (False, reason, None), scanned


async def test_unpaid_unknown_and_refunded_orders_do_not_verify(shop: Shop) -> None:
    signer = QrSigner.from_secret(
        TEST_QR_SECRET
    )  # codes the gateway would sign, for orders it would not sign
    await shop.call(
        "createPaymentIntent", {"orderId": "order-q6", "amount": 700, "currency": "eur"}, ALICE, mutation=True
    )
    assert (await shop.verify(signer.sign("order-q6")))["reason"] == "not_paid"
    assert (await shop.verify(signer.sign("never-created")))["reason"] == "unknown_order"

    await shop.paid_order("order-q7")
    token = (await shop.qr("order-q7"))["token"]
    partial = await shop.call(
        "refund", {"orderId": "order-q7", "amount": 1000}, admin_headers(), mutation=True
    )
    assert partial["amountRefunded"] == 1000
    verdict = await shop.verify(token)
    assert (verdict["valid"], verdict["amountRefunded"]) == (True, 1000)  # partly refunded: still paid
    await shop.call("refund", {"orderId": "order-q7"}, admin_headers(), mutation=True)
    verdict = await shop.verify(token)
    assert (verdict["valid"], verdict["reason"], verdict["amountRefunded"]) == (False, "refunded", 2500)
    assert _code(await shop.qr("order-q7")) == "CONFLICT"


async def test_rolling_qr_secret_keeps_issued_codes_valid(
    fresh_stripe_emulator: StripeEmulator, tmp_path: Path
) -> None:
    database = tmp_path / "gateway.sqlite3"
    async with _shop(payment_settings(fresh_stripe_emulator, database, qr_secret=OLD_QR_KEY)) as shop:
        await shop.paid_order("order-q8")
        old_token = (await shop.qr("order-q8"))["token"]
    rolled = payment_settings(fresh_stripe_emulator, database, qr_secret=f"{TEST_QR_SECRET},{OLD_QR_KEY}")
    async with _shop(rolled) as shop:
        assert (await shop.verify(old_token))["valid"] is True
        new_token = (await shop.qr("order-q8"))["token"]
        assert new_token != old_token  # new codes are signed with the new key
        assert new_token.split(".")[1] != old_token.split(".")[1]
    async with _shop(
        payment_settings(fresh_stripe_emulator, database)
    ) as shop:  # the old key dropped at last
        assert (await shop.verify(old_token))["reason"] == "unknown_key"
        assert (await shop.verify(new_token))["valid"] is True


async def test_single_use_codes_verify_once_and_the_scan_is_audited(
    fresh_stripe_emulator: StripeEmulator, tmp_path: Path
) -> None:
    settings = payment_settings(
        fresh_stripe_emulator, tmp_path / "gateway.sqlite3", gateway_qr_single_use=True
    )
    async with _shop(settings) as shop:
        await shop.paid_order("order-q9")
        token = (await shop.qr("order-q9"))["token"]
        first = await shop.verify(token)
        again = await shop.verify(token, staff_headers("another-door"))
    assert first["valid"] is True
    assert first["redeemedAt"] is not None
    assert (again["valid"], again["reason"], again["redeemedAt"]) == (
        False,
        "already_used",
        first["redeemedAt"],
    )
    store = await open_store(settings.database_url)
    try:
        redeemed = [
            entry for entry in await store.list_audit("order-q9") if entry.action == "qr_code.redeemed"
        ]
    finally:
        await store.close()
    assert [entry.actor for entry in redeemed] == ["user:door-staff"]


async def test_without_qr_secret_codes_are_a_precondition_failure(
    fresh_stripe_emulator: StripeEmulator, tmp_path: Path
) -> None:
    async with _shop(payment_settings(fresh_stripe_emulator, tmp_path / "db.sqlite3", qr_secret="")) as shop:
        await shop.paid_order("order-q10")
        assert _code(await shop.qr("order-q10")) == "PRECONDITION_FAILED"
        assert _code(await shop.verify("P1.abcdef.eA.AAAAAAAAAAAAAAAAAAAAAA")) == "PRECONDITION_FAILED"


async def test_asking_for_codes_cannot_spend_the_accounts_stripe_rate_limit(shop: Shop) -> None:
    """An unpaid order's status is checked with Stripe at most every 2 s, however many codes are asked for."""
    order = {"orderId": "order-q11", "amount": 900, "currency": "eur"}
    await shop.call("createPaymentIntent", order, ALICE, mutation=True)
    metrics = shop.gateway.app[METRICS]

    def retrieves() -> int:
        calls = metrics.since_start().stripe
        return sum(n for (operation, _), n in calls.items() if operation == "payment_intents.retrieve")

    before = retrieves()
    assert _code(await shop.qr("order-q11")) == "CONFLICT"
    assert retrieves() == before + 1  # the first question about an unfinished payment goes to Stripe
    before += 1
    paths = ",".join(["stripe.getPaymentQrCode"] * 40)
    inputs = msgspec.json.encode({str(i): {"orderId": "order-q11"} for i in range(40)}).decode()
    async with shop.http.get(
        f"{shop.gateway.trpc_url}/{paths}", params={"batch": "1", "input": inputs}, headers=ALICE
    ) as response:
        answers = await response.json()
    assert {answer["error"]["data"]["code"] for answer in answers} == {"CONFLICT"}
    assert retrieves() - before <= 1
