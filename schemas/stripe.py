"""Schemas of the `stripe.*` procedures."""

from __future__ import annotations

import msgspec

__all__ = ["StripeConfig"]


class StripeConfig(msgspec.Struct, rename="camel", frozen=True):
    """What the app needs to initialise the Stripe SDK and the PaymentSheet."""

    publishable_key: str
    """`pk_test_…` or `pk_live_…`: the key the app's Stripe SDK is initialised with."""
    merchant_display_name: str
    """The name the PaymentSheet shows (`merchantDisplayName`)."""
    merchant_country_code: str
    """ISO 3166-1 alpha-2 country, as Apple Pay and Google Pay need it (`merchantCountryCode`)."""
    test_mode: bool
    """True with test keys: the app should use Google Pay's test environment."""
