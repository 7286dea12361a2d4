"""The payment domain: orders, PaymentIntents, cancellations and refunds, between the store and Stripe."""

from typing import Final

from gateway.payments.service import Actor, PaymentService
from gateway.services import ServiceKey

__all__ = ["PAYMENTS", "Actor", "PaymentService"]

PAYMENTS: Final = ServiceKey[PaymentService]("payments")
