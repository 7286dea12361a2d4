"""Signed payment QR tokens: a paid order's owner shows one, staff scan it, the gateway verifies it.

A token names the order and nothing else (no amount, no e-mail, no name: a photo of the screen gives nothing
away) and is signed with QR_SECRET:

    P1.<kid>.<payload>.<tag>

- `P1`: the format's version, inside the MAC input, so that a later format's token can never pass for this one.
- `<kid>`: which key signed it, 6 characters of base64url(HMAC-SHA256(key, "qr-key-id")). Derived, never
  configured: short, the same for the same key on every instance, and it reveals nothing about the key.
- `<payload>`: base64url(order id as UTF-8), unpadded.
- `<tag>`: base64url(the first 16 bytes of HMAC-SHA256(key, "P1.<kid>.<payload>")), unpadded: a 128-bit tag
  over the version, the key id and the payload exactly as written, so none of them can be changed.

Every part is base64url (`A-Z a-z 0-9 - _`) joined by dots: URL-safe, and QR byte mode holds it as is. Signing
is deterministic (the same order and key give the same token), so a code can be re-issued at will and compared.

QR_SECRET holds one or more keys, newest first: the first signs, every one verifies. Rolling it (prepend a new
key; drop the old one once the codes it signed no longer matter) never breaks a code already issued.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable
from typing import Final, Literal

import msgspec

from gateway.settings import MIN_APP_SECRET_LENGTH, Settings, qr_secrets
from schemas.stripe import ORDER_ID_PATTERN

__all__ = [
    "KEY_ID_LENGTH",
    "MAX_ORDER_ID_LENGTH",
    "MAX_TOKEN_LENGTH",
    "TOKEN_VERSION",
    "QrSigner",
    "QrSigningDisabled",
    "QrTokenError",
    "QrTokenFailure",
    "VerifiedToken",
    "key_id",
]

TOKEN_VERSION: Final = "P1"  # noqa: S105 - a format version, not a password
"""The first part of every token of this format."""
KEY_ID_LENGTH: Final = 6
"""Characters of a key id: 36 bits, so that two keys of one QR_SECRET practically never share one (they may:
verification then tries both)."""
TAG_BYTES: Final = 16
"""128 bits of HMAC-SHA256: forging one is a 2^-128 guess per try."""
MAX_ORDER_ID_LENGTH: Final = 200
"""Order ids are 1 to 200 characters (schemas.stripe.OrderId)."""


def _b64_length(byte_count: int) -> int:
    """Characters of unpadded base64 for `byte_count` bytes."""
    return (byte_count * 4 + 2) // 3


MAX_TOKEN_LENGTH: Final = (
    len(TOKEN_VERSION)
    + 1
    + KEY_ID_LENGTH
    + 1
    + _b64_length(MAX_ORDER_ID_LENGTH * 4)
    + 1
    + _b64_length(TAG_BYTES)
)
"""Longest token `sign` makes: 200 characters of 4 UTF-8 bytes each (1100). `verify` refuses anything longer
before any other work, so a huge string costs one `len()`."""

_KEY_ID_MESSAGE: Final = b"qr-key-id"
_ORDER_ID: Final = re.compile(ORDER_ID_PATTERN)
# Anchored on both ends with \Z (a `$` would accept a trailing newline). Lengths are checked here so that no
# later step sees an absurd part; the payload may be any length `sign` can produce.
_TOKEN: Final = re.compile(
    rf"{TOKEN_VERSION}\.([A-Za-z0-9_-]{{{KEY_ID_LENGTH}}})\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]{{{_b64_length(TAG_BYTES)}}})\Z"
)

QrTokenFailure = Literal["malformed", "unknown_key", "bad_signature"]
"""Why a token was refused: not a token of this format (or not of an order id) / signed by a key that QR_SECRET
no longer holds (or never held) / not signed by the key it names (tampered or forged)."""

_MESSAGES: Final[dict[QrTokenFailure, str]] = {
    "malformed": "not a payment QR code",
    "unknown_key": "the QR code was signed with a key this gateway does not hold",
    "bad_signature": "the QR code's signature does not match",
}


class QrTokenError(Exception):
    """A token that does not prove a payment. `reason` is a machine word; the message is a fixed sentence per
    reason, so nothing the token or the keys hold can leak through it."""

    def __init__(self, reason: QrTokenFailure) -> None:
        super().__init__(_MESSAGES[reason])
        self.reason: QrTokenFailure = reason


class QrSigningDisabled(RuntimeError):
    """`sign` was called without a key (QR_SECRET empty): a configuration matter, not a caller's mistake."""


class VerifiedToken(msgspec.Struct, frozen=True, kw_only=True):
    """A genuine token: the order it names and the id of the key that signed it."""

    order_id: str
    key_id: str
    """Equal to `QrSigner.key_id` unless the code was signed before the key was rolled."""


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes | None:
    """Unpadded base64url, strictly: None for a length no encoder produces or a non-canonical ending (unused
    bits set), so that exactly one string decodes to given bytes."""
    if len(text) % 4 == 1:
        return None
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return data if _b64encode(data) == text else None


def key_id(key: str) -> str:
    """The id of a QR key as tokens carry it: 6 characters of base64url(HMAC-SHA256(key, "qr-key-id"))."""
    digest = hmac.new(key.encode("utf-8"), _KEY_ID_MESSAGE, hashlib.sha256).digest()
    return _b64encode(digest)[:KEY_ID_LENGTH]


def _valid_order_id(order_id: str) -> bool:
    """The procedures' own rule for order ids (schemas.stripe.OrderId), so every order can have its code."""
    return 1 <= len(order_id) <= MAX_ORDER_ID_LENGTH and _ORDER_ID.match(order_id) is not None


def _tag(key: bytes, signed_part: str) -> str:
    return _b64encode(hmac.new(key, signed_part.encode("ascii"), hashlib.sha256).digest()[:TAG_BYTES])


class QrSigner:
    """Signs and verifies payment QR tokens with QR_SECRET's keys (the first signs, every one verifies).

    Built once at start-up; immutable and thread-safe afterwards."""

    def __init__(self, keys: Iterable[str]) -> None:
        """`keys`: newest first, as QR_SECRET lists them. Each must be 32+ characters (the settings refuse
        shorter ones; this refuses them again, so a signer can never be built on a guessable key)."""
        unique = list(dict.fromkeys(keys))  # a key listed twice is one key
        for position, key in enumerate(unique, 1):
            if len(key) < MIN_APP_SECRET_LENGTH:
                raise ValueError(
                    f"QR key {position} is too short: at least {MIN_APP_SECRET_LENGTH} characters"
                )
        self._keys: Final = tuple((key_id(key), key.encode("utf-8")) for key in unique)
        by_id: dict[str, list[bytes]] = {}
        for kid, key_bytes in self._keys:
            by_id.setdefault(kid, []).append(key_bytes)
        self._by_id: Final = {kid: tuple(found) for kid, found in by_id.items()}

    @classmethod
    def from_secret(cls, value: str) -> QrSigner:
        """From QR_SECRET's text: comma-separated keys, newest first (empty: a disabled signer)."""
        return cls(qr_secrets(value))

    @classmethod
    def from_settings(cls, settings: Settings) -> QrSigner:
        return cls.from_secret(settings.qr_secret)

    @property
    def enabled(self) -> bool:
        """False when QR_SECRET is empty: no code can be signed, and none verifies."""
        return bool(self._keys)

    @property
    def key_id(self) -> str | None:
        """The id of the key that signs (the first), None when disabled."""
        return self._keys[0][0] if self._keys else None

    @property
    def key_ids(self) -> tuple[str, ...]:
        """The ids of every key that verifies, newest first."""
        return tuple(kid for kid, _ in self._keys)

    def sign(self, order_id: str) -> str:
        """The token of `order_id`, signed with the newest key. The same order gives the same token.

        Raises ValueError for what is not an order id (schemas.stripe.OrderId), and QrSigningDisabled when
        QR_SECRET is empty."""
        if not self._keys:
            raise QrSigningDisabled("QR_SECRET is not set: payment QR codes cannot be signed")
        if not _valid_order_id(order_id):
            raise ValueError(
                f"an order id is 1 to {MAX_ORDER_ID_LENGTH} characters, not blank, no control characters"
            )
        kid, key = self._keys[0]
        signed_part = f"{TOKEN_VERSION}.{kid}.{_b64encode(order_id.encode('utf-8'))}"
        return f"{signed_part}.{_tag(key, signed_part)}"

    def verify(self, token: str) -> VerifiedToken:
        """The order a genuine token names. Anything else, whatever it is, raises `QrTokenError` only:
        `malformed` (not this format, or not an order id), `unknown_key` (no configured key has its key id),
        `bad_signature` (the tag is not the named key's)."""
        # Cheap refusals first, in an order that never does work proportional to an attacker's input beyond
        # MAX_TOKEN_LENGTH characters.
        if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
            raise QrTokenError("malformed")
        match = _TOKEN.match(token)
        if match is None:
            raise QrTokenError("malformed")
        kid, payload, tag = match.groups()
        order_id = self._order_id(payload)
        keys = self._by_id.get(kid)
        if keys is None:
            raise QrTokenError("unknown_key")
        signed_part = token[: -len(tag) - 1]
        # Every candidate is computed and compared in constant time (the tags are ASCII, so compare_digest
        # takes them); `any` over a list, not a generator, so that the time does not depend on which matched.
        if not any([hmac.compare_digest(_tag(key, signed_part), tag) for key in keys]):
            raise QrTokenError("bad_signature")
        return VerifiedToken(order_id=order_id, key_id=kid)

    @staticmethod
    def _order_id(payload: str) -> str:
        data = _b64decode(payload)
        if data is None:
            raise QrTokenError("malformed")
        try:
            order_id = data.decode("utf-8")
        except UnicodeDecodeError:
            raise QrTokenError("malformed") from None
        if not _valid_order_id(order_id):
            raise QrTokenError("malformed")
        return order_id

    def __repr__(self) -> str:  # never the keys
        return f"QrSigner(key_ids={list(self.key_ids)!r})"
