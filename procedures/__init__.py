"""The tRPC procedures the app calls, assembled into one root router."""

from __future__ import annotations

from gateway.registry import Router
from procedures import stripe_config, stripe_payments, stripe_qr

__all__ = ["build_router"]


def build_router() -> Router:
    """The production router: `stripe.*`."""
    stripe = Router()
    stripe_config.register(stripe)
    stripe_payments.register(stripe)
    stripe_qr.register(stripe)
    root = Router()
    root.include("stripe", stripe)
    return root
