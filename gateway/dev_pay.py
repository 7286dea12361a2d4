"""`gateway dev pay`: play the customer's phone, for the offline demo and manual tests.

The app's PaymentSheet talks to Stripe's servers directly and cannot reach a local emulator, so this command does
what it would: confirm the order's PaymentIntent with a test card. Test mode only: refused in production and with
live keys; it is a command, never an HTTP route.
"""

from __future__ import annotations

from typing import Final

import aiohttp

from gateway.local_stripe import read_emulator_state
from gateway.payments import PaymentService
from gateway.settings import ConfigurationError, Settings
from gateway.store import open_store
from gateway.stripe_api import StripeApi

__all__ = ["TEST_CARDS", "dev_pay", "settings_for_dev_commands"]

TEST_CARDS: Final = {
    "visa": "pm_card_visa",
    "decline": "pm_card_chargeDeclined",
    "insufficient-funds": "pm_card_chargeDeclinedInsufficientFunds",
    "3ds": "pm_card_threeDSecure2Required",
}
"""Stripe's test PaymentMethods: they work in Stripe's test mode and on the local emulator alike."""


def settings_for_dev_commands(settings: Settings) -> Settings:
    """The settings `gateway serve` runs with: the emulator it started when no key is set."""
    if settings.is_production or not settings.stripe_test_mode:
        raise ConfigurationError(
            "development commands run in test mode only (NODE_ENV=production or a live key)"
        )
    if not settings.uses_emulator:
        return settings
    return read_emulator_state().configure(settings)


async def dev_pay(settings: Settings, order_id: str, card: str, *, authenticate: bool = True) -> str:
    """Pay `order_id` with a test card; the PaymentIntent's status at Stripe afterwards. The store is not written:
    the gateway learns of the payment from Stripe's webhook, as it would of the phone's."""
    store = await open_store(settings.database_url)
    stripe = StripeApi(settings)
    try:
        payments = PaymentService(store, stripe, settings)
        intent = await payments.pay_for_development(order_id, TEST_CARDS[card])
        if intent.status == "requires_action" and settings.stripe_api_base and intent.client_secret:
            # 3-D Secure: on the emulator, complete (or fail) the customer's authentication step.
            await _emulator_authenticate(settings, intent.id, intent.client_secret, success=authenticate)
            intent = await stripe.retrieve_payment_intent(intent.id)
        return intent.status
    finally:
        await stripe.close()
        await store.close()


async def _emulator_authenticate(
    settings: Settings, intent_id: str, client_secret: str, *, success: bool
) -> None:
    url = f"{settings.stripe_api_base}/v1/payment_intents/{intent_id}/_authenticate"
    form = {"client_secret": client_secret, "success": "true" if success else "false"}
    form["key"] = settings.stripe_publishable_key
    async with aiohttp.ClientSession() as session, session.post(url, data=form) as response:
        response.raise_for_status()
