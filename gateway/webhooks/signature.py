"""Stripe webhook signatures, checked on the raw body bytes before anything is parsed.

`Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>[,v1=…][,v0=…]`. Stripe sends
several `v1` while it rolls the endpoint's secret, and `STRIPE_WEBHOOK_SECRET` may hold several secrets while we
roll ours: a delivery is genuine when any configured secret matches any `v1`. Other schemes (`v0` is Stripe's
test-only one) are ignored, as Stripe's SDKs do.

This is the SDK's check without importing `stripe` (only `gateway.stripe_api` does), with three differences on
purpose: the body is hashed as bytes (no UTF-8 decoding that a malformed body could make raise), a timestamp too
far in the future is refused as well as one too old, and a header that is not exactly Stripe's format is refused
rather than half-read. Every failure is a `WebhookSignatureError` whose `reason` goes into the log line
`event: webhook_signature_invalid`; neither it nor the message ever contains a secret or the expected signature.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Sequence
from typing import Final, Literal

import msgspec

__all__ = [
    "DEFAULT_TOLERANCE_SECONDS",
    "MAX_SIGNATURE_HEADER_BYTES",
    "MAX_WEBHOOK_BODY_BYTES",
    "SignatureFailure",
    "SignatureHeader",
    "VerifiedSignature",
    "WebhookSignatureError",
    "parse_signature_header",
    "parse_webhook_secrets",
    "sign",
    "verify_signature",
]

DEFAULT_TOLERANCE_SECONDS: Final = 300
"""Stripe's SDKs default (`stripe.Webhook.DEFAULT_TOLERANCE`): how far a signature's time may be from ours."""

MAX_WEBHOOK_BODY_BYTES: Final = 512 * 1024
"""Largest webhook body the route should read. The signature covers the whole body, so it must be buffered and
hashed before we know who sent it: this bounds what an anonymous sender can make us hold. Stripe's events are
well under 256 KB even with the object fully embedded and pretty-printed (as the emulator sends them), so 512 KiB
leaves twice that margin while staying below the tRPC routes' 1 MiB `GATEWAY_MAX_BODY_BYTES`."""

MAX_SIGNATURE_HEADER_BYTES: Final = 4096
"""Longest `Stripe-Signature` accepted. A real one is `t=` plus a few 64-hex signatures (about 150 bytes, a few
hundred during a rotation); anything far longer is not Stripe, and is refused before it is split."""

SignatureFailure = Literal[
    "missing_header",
    "malformed_header",
    "no_v1_signature",
    "no_matching_signature",
    "timestamp_outside_tolerance",
]
"""Why a delivery was refused, for logs and metrics."""

_MESSAGES: Final[dict[SignatureFailure, str]] = {
    "missing_header": "no Stripe-Signature header",
    "malformed_header": "the Stripe-Signature header is not `t=<timestamp>,v1=<signature>`",
    "no_v1_signature": "the Stripe-Signature header has no v1 signature",
    "no_matching_signature": "no v1 signature matches the body under a configured webhook secret",
    "timestamp_outside_tolerance": "the signature's timestamp is outside the tolerance",
}

# Unix seconds as Stripe writes them: ASCII digits only (`int()` would also take "+1", " 1", "1_0" or other
# scripts' digits), and at most 12 of them, which is beyond the year 30000 and keeps `int()` trivially cheap.
_TIMESTAMP: Final = re.compile(r"[0-9]{1,12}")
_SECRET_PREFIX: Final = "whsec_"  # noqa: S105 - the prefix of Stripe's signing secrets, not one


class WebhookSignatureError(Exception):
    """The delivery is not proven to come from Stripe. `reason` is one short machine word; the message is a fixed
    sentence per reason, so nothing the sender or the configuration holds can leak through it."""

    def __init__(self, reason: SignatureFailure) -> None:
        super().__init__(_MESSAGES[reason])
        self.reason: SignatureFailure = reason


class SignatureHeader(msgspec.Struct, frozen=True):
    """A parsed `Stripe-Signature`: its timestamp and every `v1` signature, in order."""

    timestamp: int
    v1: tuple[str, ...]


class VerifiedSignature(msgspec.Struct, frozen=True):
    """A delivery proven genuine: when Stripe signed it, and which configured secret matched (its position in
    `STRIPE_WEBHOOK_SECRET`; once the old one never matches any more, a rotation can drop it)."""

    timestamp: int
    secret_index: int


def parse_signature_header(header: str | None) -> SignatureHeader:
    """Read `t=<ts>,v1=<hex>[,v1=…][,<scheme>=…]`; raises only `WebhookSignatureError`.

    Every item must be `key=value` and `t` must appear exactly once: Stripe's SDKs read the first `t` and skip what
    they do not understand, but a header that two readers could read differently is not one Stripe sent."""
    if header is None:
        raise WebhookSignatureError("missing_header")
    # Length first, so nothing below ever walks a huge value; ASCII next, so lengths are bytes and the signatures
    # can be compared as bytes.
    if len(header) > MAX_SIGNATURE_HEADER_BYTES or not header.isascii():
        raise WebhookSignatureError("malformed_header")
    timestamps: list[str] = []
    v1: list[str] = []
    for item in header.strip().split(","):
        key, equals, value = item.partition("=")
        if not equals or not key:
            raise WebhookSignatureError("malformed_header")
        if key == "t":
            timestamps.append(value)
        elif key == "v1":
            v1.append(value)
    if len(timestamps) != 1 or not _TIMESTAMP.fullmatch(timestamps[0]):
        raise WebhookSignatureError("malformed_header")
    if not v1:
        raise WebhookSignatureError("no_v1_signature")
    return SignatureHeader(timestamp=int(timestamps[0]), v1=tuple(v1))


def verify_signature(
    payload: bytes,
    header: str | None,
    secrets: Sequence[str],
    *,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
    now: Callable[[], float] = time.time,
) -> VerifiedSignature:
    """Prove that `payload` (the raw request body, unparsed) was signed by Stripe under one of `secrets`, at most
    `tolerance` seconds from `now()`, before or after. Raises `WebhookSignatureError` for anything from the
    request; `ValueError` only for the caller's mistakes (no secret, a negative tolerance)."""
    if not secrets:
        raise ValueError("no webhook secret configured")
    if tolerance < 0:
        raise ValueError("the tolerance must not be negative")
    parsed = parse_signature_header(header)
    candidates = [signature.encode("ascii") for signature in parsed.v1]
    # The signature is checked before the time, as the SDK does, so that `timestamp_outside_tolerance` only ever
    # names a genuine but late (or clock-skewed) delivery, and forgeries all read `no_matching_signature`.
    for index, secret in enumerate(secrets):
        expected = _signature(payload, secret, parsed.timestamp).encode("ascii")
        if any(hmac.compare_digest(expected, candidate) for candidate in candidates):
            if abs(now() - parsed.timestamp) > tolerance:
                raise WebhookSignatureError("timestamp_outside_tolerance")
            return VerifiedSignature(timestamp=parsed.timestamp, secret_index=index)
    raise WebhookSignatureError("no_matching_signature")


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """The `Stripe-Signature` Stripe would send for `payload` (for tests, the emulator and the smoke test)."""
    return f"t={timestamp},v1={_signature(payload, secret, timestamp)}"


def parse_webhook_secrets(value: str) -> tuple[str, ...]:
    """The secrets in `STRIPE_WEBHOOK_SECRET`, which may hold several `whsec_…` values separated by commas and/or
    whitespace (`whsec_new,whsec_old`) so that a secret can be rolled without refusing deliveries meanwhile.

    An empty or blank value is no secret at all: `()`. An empty entry (`whsec_a,,whsec_b`, a trailing comma) or one
    that is not `whsec_…` is a `ValueError` naming its position, never its text, since it may be a real secret
    pasted in the wrong place. Repeats are dropped; the order is kept."""
    if not value.strip():
        return ()
    secrets: list[str] = []
    position = 0
    # Commas first, then whitespace inside each comma-separated part: `a, b` and `a b` are two secrets, while
    # `a,,b` and `a,` have an empty entry, most likely a secret lost in an edit.
    for part in value.split(","):
        words = part.split()
        if not words:
            raise ValueError(f"STRIPE_WEBHOOK_SECRET: entry {position + 1} is empty")
        for word in words:
            position += 1
            if not word.startswith(_SECRET_PREFIX) or word == _SECRET_PREFIX:
                raise ValueError(f"STRIPE_WEBHOOK_SECRET: entry {position} is not a `whsec_…` signing secret")
            if word not in secrets:
                secrets.append(word)
    return tuple(secrets)


def _signature(payload: bytes, secret: str, timestamp: int) -> str:
    # Hashed as bytes: identical to the SDK's `f"{t}.{body}"` on a UTF-8 body, and nothing to decode on any other.
    return hmac.new(secret.encode(), b"%d.%b" % (timestamp, payload), hashlib.sha256).hexdigest()
