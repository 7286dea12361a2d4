"""Stripe's webhooks: `signature` proves a delivery genuine from its raw bytes, before anything is parsed."""

from gateway.webhooks.signature import (
    DEFAULT_TOLERANCE_SECONDS,
    MAX_SIGNATURE_HEADER_BYTES,
    MAX_WEBHOOK_BODY_BYTES,
    SignatureFailure,
    SignatureHeader,
    VerifiedSignature,
    WebhookSignatureError,
    parse_signature_header,
    parse_webhook_secrets,
    sign,
    verify_signature,
)

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
