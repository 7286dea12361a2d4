# SPDX-License-Identifier: GPL-3.0-or-later
# Test/demo-only Stripe emulator that patches localstripe (GPL-3.0-or-later); not shipped, no gateway module imports it.
"""Refunds bounded by what is left on the charge, with Stripe's errors and events.

localstripe refunds the full charge again when `amount` is omitted, accepts over-refunds, refuses `reason`, answers
a 500 for a PaymentIntent without a charge (create and list), and sends no event. Here a refund defaults to what is
left, an over-refund is a 400 `amount_too_large`, and each refund sends `refund.created` and `charge.refunded` (the
Charge, with its cumulative `amount_refunded`).
"""

from __future__ import annotations

from typing import Any

from localstripe.resources import Charge, PaymentIntent, Refund, try_convert_to_int

from emulator.errors import reject_unknown, stripe_error
from emulator.patches import replace_classmethod
from emulator.patches.webhooks import emit

__all__ = ["REASONS", "apply"]

REASONS = ("duplicate", "fraudulent", "requested_by_customer")
_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£"}


def _money(amount: int, currency: str) -> str:
    symbol = _SYMBOLS.get(currency)
    return f"{symbol}{amount / 100:.2f}" if symbol else f"{amount / 100:.2f} {currency.upper()}"


def _refundable_charge(charge: Any, payment_intent: Any) -> Any:
    """The Charge a refund applies to; a PaymentIntent refunds its latest charge, which must have succeeded."""
    if payment_intent is not None:
        intent = PaymentIntent._api_retrieve(payment_intent)
        latest = intent.latest_charge
        if intent.status != "succeeded" or latest is None:
            raise stripe_error(
                400,
                f"This PaymentIntent ({intent.id}) does not have a successful charge to refund.",
                param="payment_intent",
            )
        if charge is not None and charge != latest.id:
            raise stripe_error(
                400, f"Charge {charge} does not belong to PaymentIntent {intent.id}.", param="charge"
            )
        return latest
    if charge is None:
        raise stripe_error(
            400, "One of the following params should be provided for this request: payment_intent or charge."
        )
    charge_obj = Charge._api_retrieve(charge)
    if charge_obj.status != "succeeded":
        raise stripe_error(400, f"Charge {charge_obj.id} has failed and cannot be refunded.", param="charge")
    return charge_obj


def _patch_init() -> None:
    original_init = Refund.__init__

    def init(
        self: Any,
        charge: Any = None,
        payment_intent: Any = None,
        amount: Any = None,
        metadata: Any = None,
        reason: Any = None,
        **params: Any,
    ) -> None:
        reject_unknown(params)
        if reason not in (None, *REASONS):
            raise stripe_error(
                400,
                f"Invalid reason: must be one of {', '.join(REASONS)}",
                code="parameter_invalid_string",
                param="reason",
            )
        charge_obj = _refundable_charge(charge, payment_intent)
        left = charge_obj.amount - charge_obj.amount_refunded
        if left <= 0:
            raise stripe_error(
                400, f"Charge {charge_obj.id} has already been refunded.", code="charge_already_refunded"
            )
        if amount is not None:
            amount = try_convert_to_int(amount)
            if type(amount) is not int or amount <= 0:
                raise stripe_error(
                    400, "Invalid positive integer", code="parameter_invalid_integer", param="amount"
                )
            if amount > left:
                raise stripe_error(
                    400,
                    f"Refund amount ({_money(amount, charge_obj.currency)}) is greater than unrefunded amount on "
                    f"charge ({_money(left, charge_obj.currency)})",
                    code="amount_too_large",
                    param="amount",
                )
        original_init(
            self, charge=charge_obj.id, amount=left if amount is None else amount, metadata=metadata
        )
        self.payment_intent = charge_obj.payment_intent  # also when refunded by charge id, as on Stripe
        self.reason = reason

    Refund.__init__ = init


def _patch_create() -> None:
    def _api_create(cls: Any, **params: Any) -> Any:
        refund = original_create(**params)
        emit("refund.created", refund)
        emit("charge.refunded", Charge._api_retrieve(refund.charge))
        return refund

    # Only the API route emits: localstripe's own refunds (the uncaptured rest of a partial capture) do not.
    original_create = replace_classmethod(Refund, "_api_create", _api_create)


def _patch_list() -> None:
    def _api_list_all(
        cls: Any,
        url: str,
        charge: Any = None,
        payment_intent: Any = None,
        limit: Any = None,
        starting_after: Any = None,
        **params: Any,
    ) -> Any:
        reject_unknown(params)
        if payment_intent is not None and PaymentIntent._api_retrieve(payment_intent).latest_charge is None:
            refunds = original_list(url, limit=limit, starting_after=starting_after)
            refunds._list = []  # nothing was charged, so nothing was refunded
            return refunds
        return original_list(
            url, charge=charge, payment_intent=payment_intent, limit=limit, starting_after=starting_after
        )

    original_list = replace_classmethod(Refund, "_api_list_all", _api_list_all)


def apply() -> None:
    _patch_init()
    _patch_create()
    _patch_list()
