"""The payment state machine, defined once: which status an order may move to from which.

An order's status is its current PaymentIntent's, as Stripe reports it (through a webhook, or when the gateway asks),
plus `creating` before Stripe has answered. Reports arrive late and out of order, so a report may only move the
order along an edge of this graph; anything else is a stale report and is ignored:

- `succeeded` is final: after it only refunds happen, which change amounts, never the status. A late
  `payment_failed` or `canceled` report can never undo a payment.
- `canceled` is final for that PaymentIntent; only the gateway itself leaves it, to `creating`, when a new
  createPaymentIntent opens the order's next attempt (`REOPEN`). No report from Stripe may.
- Between the unfinished states (waiting for a payment method, a confirmation, customer action, processing, capture)
  Stripe moves both ways (a failed payment goes from `processing` back to `requires_payment_method`), so every such
  move is allowed, and so is staying put (a second failure updates the error, not the status).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from gateway.store import PaymentStatus

__all__ = ["FINAL", "REOPEN", "TRANSITIONS", "UNFINISHED", "can_move"]

UNFINISHED: Final = frozenset(
    {
        PaymentStatus.REQUIRES_PAYMENT_METHOD,
        PaymentStatus.REQUIRES_CONFIRMATION,
        PaymentStatus.REQUIRES_ACTION,
        PaymentStatus.PROCESSING,
        PaymentStatus.REQUIRES_CAPTURE,
    }
)
"""A PaymentIntent Stripe is still working on: no money yet, not given up."""

FINAL: Final = frozenset({PaymentStatus.SUCCEEDED, PaymentStatus.CANCELED})

TRANSITIONS: Final[Mapping[PaymentStatus, frozenset[PaymentStatus]]] = MappingProxyType(
    {
        # Stripe may report any status of a new intent first (a webhook can even beat the gateway's own write).
        PaymentStatus.CREATING: UNFINISHED | FINAL,
        **{status: UNFINISHED | FINAL for status in UNFINISHED},
        PaymentStatus.SUCCEEDED: frozenset({PaymentStatus.SUCCEEDED}),
        PaymentStatus.CANCELED: frozenset({PaymentStatus.CANCELED}),
    }
)
"""Where a report from Stripe may move an order, from each status (staying put included)."""

REOPEN: Final = (PaymentStatus.CANCELED, PaymentStatus.CREATING)
"""The one move no report makes: the gateway opening an order's next PaymentIntent after the last was canceled."""


def can_move(current: PaymentStatus, reported: PaymentStatus) -> bool:
    """Whether a report that the order's PaymentIntent is now `reported` may be applied to an order at `current`."""
    return reported in TRANSITIONS[current]
