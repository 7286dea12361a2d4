# SPDX-License-Identifier: GPL-3.0-or-later
# Test/demo-only Stripe emulator that patches localstripe (GPL-3.0-or-later); not shipped, no gateway module imports it.
"""PaymentIntent parameters checked and coerced as Stripe does, with its error codes (localstripe stores raw form
strings and answers a bare "Bad request")."""

from __future__ import annotations

from typing import Any

from localstripe.resources import PaymentMethod, try_convert_to_bool, try_convert_to_int

from emulator.errors import reject_unknown, stripe_error

__all__ = [
    "amount",
    "check_stored_fields",
    "currency",
    "merge_metadata",
    "payment_method_settings",
    "resolve_payment_method",
]

MINIMUM_AMOUNTS = {"usd": (50, "$"), "eur": (50, "€"), "gbp": (30, "£")}
"""Smallest chargeable amount per currency (minor units) and its symbol, as Stripe's `amount_too_small` states."""


def amount(value: Any, currency_code: str, param: str = "amount") -> int:
    """An amount in minor units: an int, at least Stripe's minimum for the currency."""
    if value is None:
        raise stripe_error(400, f"Missing required param: {param}.", code="parameter_missing", param=param)
    converted = try_convert_to_int(value)
    if type(converted) is not int or converted < 0:
        raise stripe_error(400, "Invalid positive integer", code="parameter_invalid_integer", param=param)
    minimum, symbol = MINIMUM_AMOUNTS.get(currency_code, (1, ""))
    if converted < minimum:
        raise stripe_error(
            400,
            f"Amount must be at least {symbol}{minimum / 100:.2f} {currency_code}",
            code="amount_too_small",
            param=param,
        )
    return converted


def currency(value: Any) -> str:
    """A three-letter currency code, lowercased as Stripe returns it."""
    if value is None:
        raise stripe_error(
            400, "Missing required param: currency.", code="parameter_missing", param="currency"
        )
    if not isinstance(value, str) or len(value) != 3 or not value.isalpha():
        raise stripe_error(
            400, f"Invalid currency: {value}.", code="parameter_invalid_string", param="currency"
        )
    return value.lower()


def merge_metadata(current: dict[str, str], update: Any) -> dict[str, str]:
    """Stripe's merge: keys are added or replaced, an empty value unsets a key, an empty string unsets them all."""
    if update is None:
        return current
    if update == "":
        return {}
    if not isinstance(update, dict):
        raise stripe_error(400, "Invalid object", code="parameter_invalid_object", param="metadata")
    merged = dict(current)
    for key, value in update.items():
        if value in ("", None):
            merged.pop(key, None)
        else:
            merged[str(key)] = str(value)
    return merged


def payment_method_settings(automatic: Any, types: Any) -> tuple[dict[str, Any] | None, list[str]]:
    """(`automatic_payment_methods`, `payment_method_types`) as Stripe answers them for API >= 2023-08-16.

    With neither parameter, automatic payment methods are on by default.
    """
    if automatic is not None and types is not None:
        raise stripe_error(
            400,
            "You may only specify one of these parameters: automatic_payment_methods, payment_method_types.",
            param="automatic_payment_methods",
        )
    if types is not None:
        if not isinstance(types, list) or not types or not all(isinstance(t, str) for t in types):
            raise stripe_error(
                400, "Invalid array", code="parameter_invalid_array", param="payment_method_types"
            )
        return None, types
    if automatic is None:
        automatic = {"enabled": True}
    if not isinstance(automatic, dict):
        raise stripe_error(
            400, "Invalid object", code="parameter_invalid_object", param="automatic_payment_methods"
        )
    reject_unknown(
        {
            f"automatic_payment_methods[{k}]": v
            for k, v in automatic.items()
            if k not in ("enabled", "allow_redirects")
        }
    )
    enabled = try_convert_to_bool(automatic.get("enabled"))
    if type(enabled) is not bool:
        raise stripe_error(
            400,
            "Missing required param: automatic_payment_methods[enabled].",
            code="parameter_missing",
            param="automatic_payment_methods[enabled]",
        )
    if not enabled:
        return {"enabled": False}, ["card"]
    allow_redirects = automatic.get("allow_redirects", "always")
    if allow_redirects not in ("always", "never"):
        raise stripe_error(400, "Invalid allow_redirects", param="automatic_payment_methods[allow_redirects]")
    return {"enabled": True, "allow_redirects": allow_redirects}, ["card"]


def check_stored_fields(fields: dict[str, Any]) -> None:
    """Stripe's checks of the free-form fields localstripe does not know."""
    if fields.get("setup_future_usage") not in (None, "", "on_session", "off_session"):
        raise stripe_error(400, "Invalid setup_future_usage", param="setup_future_usage")
    for name in ("statement_descriptor", "statement_descriptor_suffix"):
        value = fields.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > 22):
            raise stripe_error(400, f"Invalid {name}: at most 22 characters.", param=name)


def resolve_payment_method(value: Any) -> str | None:
    """The stored id of a PaymentMethod; a test id such as `pm_card_visa` becomes a new `pm_…`, as on Stripe."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise stripe_error(400, "Invalid string", code="parameter_invalid_string", param="payment_method")
    return str(PaymentMethod._api_retrieve(value).id)
