# SPDX-License-Identifier: GPL-3.0-or-later
# Test/demo-only Stripe emulator that patches localstripe (GPL-3.0-or-later); not shipped, no gateway module imports it.
"""Stripe's test PaymentMethods and test-card declines, as real test mode answers them.

localstripe knows only `pm_card_visa`, `pm_card_visa_chargeDeclined` and `pm_card_chargeCustomerFail`; its
`pm_card_visa_chargeDeclined` card (4000000000000002) declines only when attached to a customer, so confirming it
succeeds; and a decline comes back as a 402 without `decline_code`, typed `invalid_request_error`. Here the decline
cards decline at confirmation with Stripe's code, `decline_code` and message, the error carries the PaymentIntent,
and the PaymentIntent loses its payment method (`requires_payment_method`) as on Stripe.
"""

from __future__ import annotations

import time
from typing import Any

from localstripe.resources import Charge, PaymentIntent, PaymentMethod

from emulator.errors import stripe_error

__all__ = ["DECLINES", "TEST_PAYMENT_METHODS", "apply"]

_GENERIC = ("card_declined", "generic_decline", "Your card was declined.")
_INSUFFICIENT = ("card_declined", "insufficient_funds", "Your card has insufficient funds.")
DECLINES: dict[str, tuple[str, str, str]] = {
    "4000000000000002": _GENERIC,
    "4000000000000341": _GENERIC,  # attaches, then declines when charged
    "4000008400001629": _GENERIC,  # 3DS first, then declines
    "4000000000009995": _INSUFFICIENT,
    "4000008260003178": _INSUFFICIENT,  # 3DS first, then declines
    "4000000000009987": ("card_declined", "lost_card", "Your card was declined."),
    "4000000000009979": ("card_declined", "stolen_card", "Your card was declined."),
    "4000000000000069": ("expired_card", "expired_card", "Your card has expired."),
    "4000000000000127": ("incorrect_cvc", "incorrect_cvc", "Your card's security code is incorrect."),
    "4000000000000119": (
        "processing_error",
        "processing_error",
        "An error occurred while processing your card. Try again in a little bit.",
    ),
}
"""Card number -> (error code, decline_code, message) when a charge is attempted."""

_DECLINING = {
    "chargeDeclined": "4000000000000002",
    "chargeDeclinedInsufficientFunds": "4000000000009995",
    "chargeDeclinedLostCard": "4000000000009987",
    "chargeDeclinedStolenCard": "4000000000009979",
    "chargeDeclinedExpiredCard": "4000000000000069",
    "chargeDeclinedIncorrectCvc": "4000000000000127",
    "chargeDeclinedProcessingError": "4000000000000119",
}
TEST_PAYMENT_METHODS: dict[str, tuple[str, str]] = {
    "pm_card_visa": ("4242424242424242", "visa"),
    "pm_card_visa_debit": ("4000056655665556", "visa"),
    "pm_card_mastercard": ("5555555555554444", "mastercard"),
    "pm_card_chargeCustomerFail": ("4000000000000341", "visa"),
    "pm_card_threeDSecure2Required": ("4000000000003220", "visa"),
    "pm_card_threeDSecureRequired": ("4000000000003063", "visa"),
    "pm_card_authenticationRequired": ("4000002500003155", "visa"),
    "pm_card_authenticationRequiredChargeDeclinedInsufficientFunds": ("4000008260003178", "visa"),
    **{f"pm_card_{name}": (number, "visa") for name, number in _DECLINING.items()},
    **{f"pm_card_visa_{name}": (number, "visa") for name, number in _DECLINING.items()},
}
"""Stripe's test PaymentMethod ids -> (card number, brand). Each use makes a new `pm_…`, as on Stripe."""


def _card_number(payment_method_id: str) -> str | None:
    return getattr(PaymentMethod._api_retrieve(payment_method_id), "_card_number", None)


def _patch_test_payment_methods() -> None:
    original = PaymentMethod._try_get_canonical_test_article

    def _try_get_canonical_test_article(cls: Any, id: str) -> Any:
        if id not in TEST_PAYMENT_METHODS:
            return original(id)
        number, brand = TEST_PAYMENT_METHODS[id]
        expiry = str(time.gmtime().tm_year + 3)
        payment_method = cls(
            type="card", card={"number": number, "exp_month": "12", "exp_year": expiry, "cvc": "123"}
        )
        payment_method.card["brand"] = brand
        return payment_method

    PaymentMethod._try_get_canonical_test_article = classmethod(_try_get_canonical_test_article)


def _patch_declines() -> None:
    original_declined = PaymentMethod._charging_is_declined
    original_set_failure = Charge._set_auth_failure

    def _charging_is_declined(self: Any) -> bool:
        return bool(original_declined(self)) or getattr(self, "_card_number", None) in DECLINES

    def _set_auth_failure(self: Any) -> None:
        original_set_failure(self)
        number = _card_number(self.payment_method)
        if number is None:  # not a card (SEPA): keep localstripe's failure
            return
        self.failure_code, decline_code, self.failure_message = DECLINES.get(number, _GENERIC)
        self.outcome = {
            "network_status": "declined_by_network",
            "reason": decline_code,
            "risk_level": "normal",
            "seller_message": "The bank did not return any further details with this decline.",
            "type": "issuer_declined",
        }

    def _raise_failure(self: Any) -> None:
        fields: dict[str, Any] = {
            "charge": self.id,
            "payment_method": PaymentMethod._api_retrieve(self.payment_method)._export(),
        }
        outcome = getattr(self, "outcome", None)
        if outcome is not None:
            fields["decline_code"] = outcome["reason"]
        if self.payment_intent is not None:
            fields["payment_intent"] = PaymentIntent._api_retrieve(self.payment_intent)._export()
        raise stripe_error(
            402,
            self.failure_message,
            error_type="card_error",
            code=self.failure_code,
            doc_url=f"https://stripe.com/docs/error-codes/{self.failure_code.replace('_', '-')}",
            **fields,
        )

    PaymentMethod._charging_is_declined = _charging_is_declined
    Charge._set_auth_failure = _set_auth_failure
    Charge._raise_failure = _raise_failure


def _patch_failed_intents() -> None:
    """A declined PaymentIntent drops its payment method and reports the decline as Stripe's `last_payment_error`."""
    for name in ("_report_failure", "_report_async_failure"):
        original = getattr(PaymentIntent, name)

        def report(self: Any, _original: Any = original) -> None:
            self.payment_method = None  # before the event is exported: Stripe's event shows it cleared
            _original(self)

        setattr(PaymentIntent, name, report)

    original_error = PaymentIntent.last_payment_error.fget

    def last_payment_error(self: Any) -> dict[str, Any] | None:
        error: dict[str, Any] | None = original_error(self)
        if error is None:
            return None
        if self._authentication_failed:
            return {**error, "type": "invalid_request_error"}
        charge = self.latest_charge
        outcome = getattr(charge, "outcome", None)
        error.update(
            type="card_error", payment_method=PaymentMethod._api_retrieve(charge.payment_method)._export()
        )
        if outcome is not None:
            error["decline_code"] = outcome["reason"]
        return error

    PaymentIntent.last_payment_error = property(last_payment_error)


def apply() -> None:
    _patch_test_payment_methods()
    _patch_declines()
    _patch_failed_intents()
