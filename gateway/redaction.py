"""Secrets hygiene: how a secret may be shown, and the scrubber every log line passes through.

Nothing secret is meant to reach a log line in the first place (call sites log ids and reasons, never keys,
tokens, client secrets, card numbers or e-mail addresses); `scrub` is the last line of defence for what slips
through anyway: an exception's text, Stripe's own message, a value pasted into the wrong field.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["redact", "scrub"]

KNOWN_PREFIXES: Final = (
    "sk_live_",
    "sk_test_",
    "rk_live_",
    "rk_test_",
    "pk_live_",
    "pk_test_",
    "ek_live_",
    "ek_test_",
    "whsec_",
)


def redact(value: str) -> str:
    """A secret as it may be shown: its kind prefix and last 4 characters, `sk_live_…abcd`, `whsec_…9f3c`.

    The last 4 are shown only when they are a small part of the value (12 characters or more after the prefix):
    those of a short value would give most of it away. A value without a known prefix is `…wxyz` or `…`."""
    prefix = next((p for p in KNOWN_PREFIXES if value.startswith(p)), "")
    rest = value[len(prefix) :]
    return f"{prefix}…{rest[-4:] if len(rest) >= 12 else ''}"


_SECRET_SHAPED: Final = re.compile(
    r"(?P<key>\b(?:sk|rk|ek)_(?:live|test)_[A-Za-z0-9]+|\bwhsec_[A-Za-z0-9_]+)"
    r"|(?P<client_secret>\b(?:pi|seti)_[A-Za-z0-9]+_secret_[A-Za-z0-9]+)"
    r"|(?P<jwt>\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)"
    # Bounded repetitions (an address's local part is at most 64 characters, a domain 253): an unbounded `+` before
    # `@` backtracks quadratically over a long run of letters, and a log line may hold a 64 KiB path.
    r"|(?P<email>[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63})"
    r"|(?P<card>\b\d(?:[ -]?\d){14,18}\b)"
)


def _luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _replacement(match: re.Match[str]) -> str:
    kind = match.lastgroup
    text = match.group(0)
    if kind == "key":
        return redact(text)
    if kind == "client_secret":
        return text.split("_secret_", 1)[0] + "_secret_…"  # the intent id stays: it is what an operator needs
    if kind == "jwt":
        return "jwt…"
    if kind == "email":
        return "…@" + text.rsplit("@", 1)[1]
    digits = re.sub(r"\D", "", text)
    if _luhn_valid(digits):  # a card number (PAN): the last 4 digits, as receipts show them
        return f"card…{digits[-4:]}"
    return text  # another long number (an amount, a timestamp): not a secret


def scrub(text: str) -> str:
    """`text` with every secret-shaped value redacted: Stripe keys, signing secrets, client secrets, ephemeral
    keys, JWTs, e-mail addresses (domain kept) and card numbers (Luhn-valid, last 4 kept)."""
    return _SECRET_SHAPED.sub(_replacement, text)
