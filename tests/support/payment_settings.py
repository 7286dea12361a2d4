"""Settings of a gateway that pays on the local Stripe emulator, for the e2e tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.settings import Settings
from tests.support.stripe_emulator import StripeEmulator
from tests.support.tokens import TEST_JWT_SECRET, TEST_QR_SECRET

__all__ = ["payment_settings"]


def payment_settings(emulator: StripeEmulator, database: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "stripe_secret_key": emulator.secret_key,
        "stripe_publishable_key": emulator.publishable_key,
        "stripe_webhook_secret": emulator.webhook_secret,
        "stripe_api_base": emulator.api_base,
        "stripe_max_network_retries": 0,
        "database_url": f"sqlite:///{database}",
        "jwt_secret": TEST_JWT_SECRET,
        "qr_secret": TEST_QR_SECRET,
        # These tests are not about rate limits, and some make many mutations from 127.0.0.1 at once (50
        # concurrent creates): the per-user and per-client limits are off here.
        "gateway_rate_limit_client": 0,
        "gateway_rate_limit_user": 0,
        **overrides,
    }
    return Settings(**values)
