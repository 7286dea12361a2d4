"""`stripe.getConfig`: the app's Stripe SDK settings, built from the gateway's configuration."""

from __future__ import annotations

from gateway.auth.access import PUBLIC
from gateway.context import CallContext
from gateway.registry import Router
from schemas.stripe import StripeConfig

__all__ = ["get_config", "register"]


def get_config(ctx: CallContext) -> StripeConfig:
    """The publishable key, merchant display name, country and test mode the app initialises Stripe with.
    Answered from settings alone, so a plain function (no task in a batch)."""
    settings = ctx.settings
    return StripeConfig(
        publishable_key=settings.stripe_publishable_key,
        merchant_display_name=settings.gateway_merchant_display_name,
        merchant_country_code=settings.gateway_merchant_country,
        test_mode=settings.stripe_test_mode,
    )


def register(router: Router) -> None:
    router.query(get_config, access=PUBLIC)
