"""Stripe access: the only package that imports `stripe`."""

from gateway.stripe_api.client import StripeApi
from gateway.stripe_api.errors import FailureKind, StripeCallError, to_trpc_error

__all__ = ["FailureKind", "StripeApi", "StripeCallError", "to_trpc_error"]
