"""Apple Pay / Google Pay availability: one Stripe call answers every domain until the cache expires.

PaymentService against the local emulator; the calls reaching Stripe are counted by a StripeApi subclass that
delegates to the real one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import stripe

from gateway.payments import PaymentService
from gateway.settings import Settings
from gateway.store.sqlite import SqliteStore
from gateway.stripe_api import StripeApi
from gateway.stripe_api.models import PaymentMethodDomain
from schemas.stripe import NativePayAvailability
from tests.support.stripe_emulator import StripeEmulator


class CountingStripe(StripeApi):
    domain_lists = 0

    async def list_payment_method_domains(self, domain: str | None = None) -> list[PaymentMethodDomain]:
        self.domain_lists += 1
        return await super().list_payment_method_domains(domain)


async def services(
    emulator: StripeEmulator, tmp_path: Path, ttl: int
) -> AsyncIterator[tuple[PaymentService, CountingStripe]]:
    settings = Settings(
        stripe_secret_key=emulator.secret_key,
        stripe_api_base=emulator.api_base,
        stripe_max_network_retries=0,
        gateway_native_pay_cache_ttl=ttl,
    )
    store = await SqliteStore.open(tmp_path / "gateway.sqlite3")
    counting = CountingStripe(settings)
    try:
        yield PaymentService(store, counting, settings), counting
    finally:
        await counting.close()
        await store.close()


async def register(emulator: StripeEmulator, *domains: str) -> None:
    http = stripe.AIOHTTPClient()
    client = stripe.StripeClient(
        emulator.secret_key, base_addresses={"api": emulator.api_base}, http_client=http
    )
    try:
        for domain in domains:
            await client.v1.payment_method_domains.create_async({"domain_name": domain})
    finally:
        await http.close_async()  # type: ignore[no-untyped-call]


@pytest.fixture
async def cached(
    fresh_stripe_emulator: StripeEmulator, tmp_path: Path
) -> AsyncIterator[tuple[PaymentService, CountingStripe]]:
    async for pair in services(fresh_stripe_emulator, tmp_path, ttl=300):
        yield pair


async def test_many_domains_at_once_cost_one_stripe_call(
    fresh_stripe_emulator: StripeEmulator, cached: tuple[PaymentService, CountingStripe]
) -> None:
    service, counting = cached
    await register(fresh_stripe_emulator, "shop.example.com", "Pay.Example.com")
    domains = ["shop.example.com", "pay.example.com", *(f"random-{i}.example.org" for i in range(40))]

    answers = await asyncio.gather(*(service.native_pay_availability(domain) for domain in domains))
    again = await service.native_pay_availability("another.example.net")

    both = NativePayAvailability(apple_pay=True, google_pay=True)
    none = NativePayAvailability(apple_pay=False, google_pay=False)
    assert answers[:2] == [both, both]
    assert set(answers[2:]) == {none}
    assert again == none
    assert counting.domain_lists == 1


async def test_an_expired_list_is_fetched_again(
    fresh_stripe_emulator: StripeEmulator, tmp_path: Path
) -> None:
    async for service, counting in services(fresh_stripe_emulator, tmp_path, ttl=0):
        assert not (await service.native_pay_availability("late.example.com")).apple_pay
        await register(fresh_stripe_emulator, "late.example.com")
        assert (await service.native_pay_availability("late.example.com")).apple_pay
        assert counting.domain_lists == 2


async def test_every_page_of_the_registration_list_is_read(
    fresh_stripe_emulator: StripeEmulator, cached: tuple[PaymentService, CountingStripe]
) -> None:
    service, _ = cached
    await register(fresh_stripe_emulator, *(f"shop-{i}.example.com" for i in range(105)))

    answers = await asyncio.gather(
        *(service.native_pay_availability(f"shop-{i}.example.com") for i in (0, 50, 104))
    )

    assert all(answer.apple_pay for answer in answers)
