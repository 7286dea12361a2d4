"""Orders belong to whoever created them, end to end (gateway on a real port, the Stripe emulator, a real SQLite
file): another user gets NOT_FOUND exactly as for an order that does not exist; a guest (guest checkout on)
reaches its order only with the client secret; admins reach every order, and their refunds name them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest

from gateway.dev_pay import dev_pay
from gateway.settings import Settings
from gateway.store import Store, open_store
from tests.support.payment_settings import payment_settings
from tests.support.server import RunningGateway, running_gateway
from tests.support.stripe_emulator import StripeEmulator
from tests.support.tokens import admin_headers, bearer_headers

ALICE = bearer_headers("alice")
BOB = bearer_headers("bob")
GUEST: dict[str, str] = {}


@dataclass
class Shop:
    gateway: RunningGateway
    settings: Settings
    store: Store
    http: aiohttp.ClientSession

    async def call(
        self, path: str, input: object, headers: dict[str, str], *, mutation: bool = False
    ) -> tuple[int, Any]:
        url = f"{self.gateway.trpc_url}/stripe.{path}"
        if mutation:
            response = await self.http.post(url, json=input, headers=headers)
        else:
            response = await self.http.get(
                url, params={"input": msgspec.json.encode(input).decode()}, headers=headers
            )
        async with response:
            return response.status, await response.json()

    async def create(self, order_id: str, headers: dict[str, str], **extra: object) -> tuple[int, Any]:
        order = {"orderId": order_id, "amount": 2500, "currency": "eur", **extra}
        return await self.call("createPaymentIntent", order, headers, mutation=True)

    async def status(self, order_id: str, headers: dict[str, str], **extra: object) -> tuple[int, Any]:
        return await self.call("getPaymentStatus", {"orderId": order_id, **extra}, headers)

    async def cancel(self, order_id: str, headers: dict[str, str], **extra: object) -> tuple[int, Any]:
        return await self.call("cancelPaymentIntent", {"orderId": order_id, **extra}, headers, mutation=True)


async def _shop(emulator: StripeEmulator, tmp_path: Path, **overrides: Any) -> AsyncIterator[Shop]:
    settings = payment_settings(emulator, tmp_path / "gateway.sqlite3", **overrides)
    async with running_gateway(settings) as gateway, aiohttp.ClientSession() as http:
        store = await open_store(settings.database_url)
        try:
            yield Shop(gateway, settings, store, http)
        finally:
            await store.close()


@pytest.fixture
async def shop(fresh_stripe_emulator: StripeEmulator, tmp_path: Path) -> AsyncIterator[Shop]:
    async for running in _shop(fresh_stripe_emulator, tmp_path):
        yield running


@pytest.fixture
async def guest_shop(fresh_stripe_emulator: StripeEmulator, tmp_path: Path) -> AsyncIterator[Shop]:
    async for running in _shop(fresh_stripe_emulator, tmp_path, gateway_guest_checkout=True):
        yield running


def _error(answer: tuple[int, Any]) -> tuple[int, str, str]:
    status, body = answer
    return status, body["error"]["data"]["code"], body["error"]["message"]


async def test_another_user_cannot_tell_an_order_from_a_missing_one(shop: Shop) -> None:
    status, created = await shop.create("order-a1", ALICE)
    assert status == 200
    assert (await shop.status("order-a1", ALICE))[0] == 200

    missing = _error(await shop.status("no-such-order", BOB))
    assert missing == (404, "NOT_FOUND", 'No order "no-such-order"')
    assert _error(await shop.status("order-a1", BOB)) == (404, "NOT_FOUND", 'No order "order-a1"')
    assert _error(await shop.cancel("order-a1", BOB)) == (404, "NOT_FOUND", 'No order "order-a1"')
    # The client secret is a guest's proof, not a user's: Bob holding Alice's secret gets nothing either.
    secret = created["result"]["data"]["clientSecret"]
    assert _error(await shop.status("order-a1", BOB, clientSecret=secret))[1] == "NOT_FOUND"

    # Creating a payment for Alice's order id never hands Bob her PaymentIntent or client secret, and (with a
    # customer) is refused before a Customer is made at Stripe for Bob on her order.
    status, body = await shop.create("order-a1", BOB)
    assert (status, body["error"]["data"]["code"]) == (409, "CONFLICT")
    assert secret not in msgspec.json.encode(body).decode()
    status, body = await shop.create("order-a1", BOB, customer={"email": "bob@example.com"})
    assert (status, body["error"]["data"]["code"]) == (409, "CONFLICT")
    async with shop.http.get(
        f"{shop.settings.stripe_api_base}/v1/customers",
        headers={"Authorization": f"Bearer {shop.settings.stripe_secret_key}"},
    ) as customers:
        assert (await customers.json())["data"] == []

    order = await shop.store.get_order("order-a1")
    assert order is not None
    assert (order.owner, order.status.value) == ("user:alice", "requires_payment_method")
    assert [entry.actor for entry in await shop.store.list_audit("order-a1")] == ["user:alice", "user:alice"]


async def test_an_admin_reaches_every_order_and_the_audit_trail_names_them(shop: Shop) -> None:
    status, _ = await shop.create("order-a2", ALICE)
    assert status == 200
    await dev_pay(shop.settings, "order-a2", "visa")
    status, body = await shop.status("order-a2", admin_headers("carol"))
    assert (status, body["result"]["data"]["status"]) == (200, "succeeded")

    status, body = await shop.call("refund", {"orderId": "order-a2"}, ALICE, mutation=True)
    assert (status, body["error"]["data"]["code"]) == (403, "FORBIDDEN")
    status, body = await shop.call("refund", {"orderId": "order-a2"}, admin_headers("carol"), mutation=True)
    assert (status, body["result"]["data"]["amountRefunded"]) == (200, 2500)
    refund_actors = {
        entry.actor for entry in await shop.store.list_audit("order-a2") if "refund" in entry.action
    }
    assert refund_actors == {"user:carol"}


async def test_without_guest_checkout_a_caller_without_a_token_is_unauthorized(shop: Shop) -> None:
    assert _error(await shop.create("order-g0", GUEST))[:2] == (401, "UNAUTHORIZED")
    assert await shop.store.get_order("order-g0") is None


async def test_a_guest_reaches_its_order_with_the_client_secret_only(guest_shop: Shop) -> None:
    shop = guest_shop
    status, body = await shop.create("order-g1", GUEST)
    assert status == 200
    secret = body["result"]["data"]["clientSecret"]
    order = await shop.store.get_order("order-g1")
    assert order is not None
    assert order.owner == "guest"

    assert _error(await shop.status("order-g1", GUEST))[:2] == (404, "NOT_FOUND")
    wrong = secret[:-4] + ("aaaa" if not secret.endswith("aaaa") else "bbbb")
    assert _error(await shop.status("order-g1", GUEST, clientSecret=wrong))[:2] == (404, "NOT_FOUND")
    status, body = await shop.status("order-g1", GUEST, clientSecret=secret)
    assert (status, body["result"]["data"]["orderId"]) == (200, "order-g1")
    # Anyone holding the secret of a guest order holds the order (the secret is what pays for it anyway).
    assert (await shop.status("order-g1", ALICE, clientSecret=secret))[0] == 200

    # Another create for the order: only with the secret (a new amount, say); without it, the id is taken.
    assert _error(await shop.create("order-g1", GUEST))[:2] == (409, "CONFLICT")
    status, body = await shop.create("order-g1", GUEST, amount=3000, clientSecret=secret)
    assert (status, body["result"]["data"]["amount"]) == (200, 3000)

    assert _error(await shop.cancel("order-g1", GUEST))[:2] == (404, "NOT_FOUND")
    status, body = await shop.cancel("order-g1", GUEST, clientSecret=secret)
    assert (status, body["result"]["data"]["status"]) == (200, "canceled")


async def test_a_users_order_is_not_reachable_by_guests_even_with_its_secret(guest_shop: Shop) -> None:
    status, body = await guest_shop.create("order-g2", ALICE)
    assert status == 200
    secret = body["result"]["data"]["clientSecret"]
    assert _error(await guest_shop.status("order-g2", GUEST, clientSecret=secret))[:2] == (404, "NOT_FOUND")
    assert _error(await guest_shop.create("order-g2", GUEST, clientSecret=secret))[:2] == (409, "CONFLICT")


async def test_a_guest_may_send_its_client_secret_in_a_header_instead_of_the_url(guest_shop: Shop) -> None:
    """GET query inputs are in the URL, which proxies and CDNs log: `X-Client-Secret` keeps the secret out of it."""
    status, body = await guest_shop.create("order-g3", GUEST)
    assert status == 200
    secret = {"x-client-secret": body["result"]["data"]["clientSecret"]}
    status, body = await guest_shop.status("order-g3", secret)
    assert (status, body["result"]["data"]["orderId"]) == (200, "order-g3")
    assert _error(await guest_shop.status("order-g3", {"x-client-secret": "pi_x_secret_wrong"}))[0] == 404
    status, body = await guest_shop.cancel("order-g3", secret)
    assert (status, body["result"]["data"]["status"]) == (200, "canceled")
