# SPDX-License-Identifier: GPL-3.0-or-later
# Test/demo-only Stripe emulator that patches localstripe (GPL-3.0-or-later); not shipped, no gateway module imports it.
"""PaymentIntents that take production's parameters and answer in real Stripe's shape.

localstripe rejects every create parameter beyond a handful (`automatic_payment_methods`, `description`, …),
stores updates as raw form strings (`amount="2000"`), answers `/confirm` with `payment_method` by a 500, refuses
`return_url` and `cancellation_reason`, sends no `payment_intent.canceled`, embeds `latest_charge` and a deprecated
`charges` list, and lacks `amount_received`, `amount_capturable`, `canceled_at`. Wrong-state calls get a bare
"Bad request" (or a 500 for capture); real Stripe's `payment_intent_unexpected_state` is what callers handle.
"""

from __future__ import annotations

import time
from typing import Any

from localstripe.resources import Customer, PaymentIntent, try_convert_to_int

from emulator.errors import reject_unknown, stripe_error
from emulator.patches import intent_params, replace_classmethod
from emulator.patches.webhooks import emit

__all__ = ["apply"]

STORED_ON_CREATE = (
    "description",
    "receipt_email",
    "setup_future_usage",
    "shipping",
    "statement_descriptor",
    "statement_descriptor_suffix",
)
"""Create parameters localstripe refuses, stored as given and returned."""
CONFIRM_ONLY = ("return_url", "use_stripe_sdk", "error_on_requires_action", "mandate_data", "radar_options")
"""Accepted at create (with `confirm=true`) and confirm, and ignored: they steer redirects and 3DS in the browser."""
UPDATABLE = (
    *STORED_ON_CREATE,
    "amount",
    "currency",
    "customer",
    "metadata",
    "payment_method",
    "payment_method_options",
    "payment_method_types",
    "capture_method",
)
SETTABLE_ON_CONFIRM = ("receipt_email", "setup_future_usage", "shipping", "payment_method_options")
AMOUNT_FIELDS = frozenset({"amount", "currency", "payment_method"})
AMOUNT_UPDATABLE_STATUSES = ("requires_payment_method", "requires_confirmation", "requires_action")
"""The only statuses in which Stripe lets `AMOUNT_FIELDS` change."""
CANCELABLE_STATUSES = (
    "requires_payment_method",
    "requires_capture",
    "requires_confirmation",
    "requires_action",
)
CANCELLATION_REASONS = ("duplicate", "fraudulent", "requested_by_customer", "abandoned")


def _unexpected_state(message: str) -> Exception:
    return stripe_error(400, message, code="payment_intent_unexpected_state")


def _set_payment_method(intent: Any, payment_method: str | None) -> None:
    """Attach a payment method for a new attempt: a failed charge or a pending 3DS step belongs to the old one."""
    intent.payment_method = payment_method
    intent.next_action = None
    intent._authentication_failed = False
    if intent.latest_charge is not None and intent.latest_charge.status == "failed":
        intent.latest_charge = None


def _expanded(expand: Any, name: str) -> bool:
    return any(path == name or path.startswith(name + ".") for path in expand or ())


def _patch_create() -> None:
    original_init = PaymentIntent.__init__

    def init(
        self: Any,
        amount: Any = None,
        currency: Any = None,
        payment_method: Any = None,
        metadata: Any = None,
        automatic_payment_methods: Any = None,
        payment_method_types: Any = None,
        payment_method_options: Any = None,
        confirmation_method: Any = None,
        **params: Any,
    ) -> None:
        for name in CONFIRM_ONLY:
            params.pop(name, None)
        stored = {name: params.pop(name, None) for name in STORED_ON_CREATE}
        checked_currency = intent_params.currency(currency)
        checked_amount = intent_params.amount(amount, checked_currency)
        automatic, types = intent_params.payment_method_settings(
            automatic_payment_methods, payment_method_types
        )
        intent_params.check_stored_fields(stored)
        original_init(
            self,
            amount=checked_amount,
            currency=checked_currency,
            payment_method=intent_params.resolve_payment_method(payment_method),
            metadata=intent_params.merge_metadata({}, metadata),
            **params,  # customer, capture_method; anything else is answered as an unknown parameter
        )
        for name, value in stored.items():
            setattr(self, name, value)
        self.automatic_payment_methods = automatic
        self.payment_method_types = types
        self.payment_method_options = payment_method_options or {}
        self.confirmation_method = confirmation_method or "automatic"
        self.canceled_at = None
        self.cancellation_reason = None
        self._amount_captured = None

    PaymentIntent.__init__ = init


def _patch_export() -> None:
    original_export = PaymentIntent._export
    del PaymentIntent.charges  # deprecated list, gone from real responses since API 2022-11-15

    def _export(self: Any, expand: Any = None) -> dict[str, Any]:
        exported: dict[str, Any] = original_export(self, expand=expand)
        charge = self.latest_charge
        if isinstance(exported.get("latest_charge"), dict) and not _expanded(expand, "latest_charge"):
            exported["latest_charge"] = charge.id
        status = exported["status"]
        exported["amount_capturable"] = charge.amount if status == "requires_capture" else 0
        if status == "succeeded":
            captured = getattr(self, "_amount_captured", None)
            exported["amount_received"] = charge.amount if captured is None else captured
        else:
            exported["amount_received"] = 0
        return exported

    PaymentIntent._export = _export


def _patch_update() -> None:
    def _api_update(cls: Any, id: str, **params: Any) -> Any:
        params.pop("expand", None)
        reject_unknown({k: v for k, v in params.items() if k not in UPDATABLE})
        intent = cls._api_retrieve(id)
        status = intent.status
        if AMOUNT_FIELDS & params.keys() and status not in AMOUNT_UPDATABLE_STATUSES:
            raise _unexpected_state(
                f"This PaymentIntent's amount, currency or payment_method could not be updated because it has a "
                f"status of {status}. You may only update them on a PaymentIntent with one of the following "
                f"statuses: {', '.join(AMOUNT_UPDATABLE_STATUSES)}."
            )
        changes = dict(params)
        if "currency" in changes:
            changes["currency"] = intent_params.currency(changes["currency"])
        if "amount" in changes:
            changes["amount"] = intent_params.amount(
                changes["amount"], changes.get("currency", intent.currency)
            )
        if "metadata" in changes:
            changes["metadata"] = intent_params.merge_metadata(intent.metadata, changes["metadata"])
        if changes.get("customer"):
            Customer._api_retrieve(changes["customer"])  # 404 if unknown
        intent_params.check_stored_fields(changes)
        payment_method = intent_params.resolve_payment_method(changes.pop("payment_method", None))
        for name, value in changes.items():
            setattr(intent, name, value)
        if "payment_method" in params:
            _set_payment_method(intent, payment_method)
        return intent

    replace_classmethod(PaymentIntent, "_api_update", _api_update)


def _patch_confirm() -> None:
    def _api_confirm(cls: Any, id: str, payment_method: Any = None, **params: Any) -> Any:
        for name in (*CONFIRM_ONLY, "client_secret", "off_session"):
            params.pop(name, None)
        reject_unknown({k: v for k, v in params.items() if k not in SETTABLE_ON_CONFIRM})
        intent = cls._api_retrieve(id)
        status = intent.status
        if status == "succeeded":
            raise _unexpected_state(
                "You cannot confirm this PaymentIntent because it has already succeeded after being previously "
                "confirmed."
            )
        if status not in ("requires_payment_method", "requires_confirmation"):
            raise _unexpected_state(
                f"You cannot confirm this PaymentIntent because it has a status of {status}. Only a PaymentIntent "
                "with one of the following statuses may be confirmed: requires_confirmation, "
                "requires_payment_method."
            )
        resolved = intent_params.resolve_payment_method(payment_method)
        if resolved is None and not intent.payment_method:
            raise _unexpected_state(
                "You cannot confirm this PaymentIntent because it's missing a payment method. Update it with a "
                "payment_method, or pass one to confirm."
            )
        intent_params.check_stored_fields(params)
        if resolved is not None:
            _set_payment_method(intent, resolved)
        for name, value in params.items():
            setattr(intent, name, value)
        return original_confirm(id)

    original_confirm = replace_classmethod(PaymentIntent, "_api_confirm", _api_confirm)


def _patch_cancel() -> None:
    def _api_cancel(cls: Any, id: str, cancellation_reason: Any = None, **params: Any) -> Any:
        reject_unknown(params)
        if cancellation_reason not in (None, *CANCELLATION_REASONS):
            raise stripe_error(
                400,
                f"Invalid cancellation_reason: must be one of {', '.join(CANCELLATION_REASONS)}",
                code="parameter_invalid_string",
                param="cancellation_reason",
            )
        intent = cls._api_retrieve(id)
        if intent.status not in CANCELABLE_STATUSES:
            raise _unexpected_state(
                f"You cannot cancel this PaymentIntent because it has a status of {intent.status}. Only a "
                "PaymentIntent with one of the following statuses may be canceled: "
                f"{', '.join(CANCELABLE_STATUSES)}."
            )
        original_cancel(id)
        intent.canceled_at = int(time.time())
        intent.cancellation_reason = cancellation_reason
        emit("payment_intent.canceled", intent)
        return intent

    original_cancel = replace_classmethod(PaymentIntent, "_api_cancel", _api_cancel)


def _patch_capture() -> None:
    def _api_capture(cls: Any, id: str, amount_to_capture: Any = None, **params: Any) -> Any:
        reject_unknown(params)
        intent = cls._api_retrieve(id)
        if intent.status != "requires_capture":
            raise _unexpected_state(
                f"This PaymentIntent could not be captured because it has a status of {intent.status}. Only a "
                "PaymentIntent with one of the following statuses may be captured: requires_capture."
            )
        amount = intent.latest_charge.amount
        if amount_to_capture is not None:
            amount = try_convert_to_int(amount_to_capture)
            if type(amount) is not int or not 0 < amount <= intent.latest_charge.amount:
                raise stripe_error(
                    400,
                    "amount_to_capture must be a positive integer no larger than the amount capturable.",
                    code="parameter_invalid_integer",
                    param="amount_to_capture",
                )
        intent._amount_captured = amount  # before capturing: payment_intent.succeeded is exported during it
        return original_capture(id, amount_to_capture=amount)

    original_capture = replace_classmethod(PaymentIntent, "_api_capture", _api_capture)


def apply() -> None:
    _patch_create()
    _patch_export()
    _patch_update()
    _patch_confirm()
    _patch_cancel()
    _patch_capture()
