"""The payment domain: orders, PaymentIntents, cancellations and refunds, between the store and Stripe."""

from typing import Final

from gateway.payments.service import GUEST, Actor, PaymentService, client_secret_digest, user_actor
from gateway.services import ServiceKey

__all__ = ["GUEST", "PAYMENTS", "Actor", "PaymentService", "client_secret_digest", "user_actor"]

PAYMENTS: Final = ServiceKey[PaymentService]("payments")
