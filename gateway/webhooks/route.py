"""`POST /webhooks/stripe`: verify, record, apply, and answer so that Stripe retries exactly when it should.

| case | answer | Stripe then |
|---|---|---|
| body larger than any Stripe event | 413, body not read | (never happens with Stripe) |
| signature missing, malformed, wrong or stale | 400 + `webhook_signature_invalid` log line | retries (a secret being rolled) |
| recorded (applied, a duplicate, or ignored with a reason) | 200 | done |
| the store unavailable | 503 | retries, for up to three days |
| no webhook secret configured | 503 + `webhook_not_configured` log line | retries until it is |

Nothing is parsed before the signature is checked, and nothing is acknowledged before it is durably recorded.
"""

from __future__ import annotations

import asyncio
from typing import Final

from aiohttp import web
from loguru import logger

from gateway import codec
from gateway.http.client_address import client_address
from gateway.logs import anonymized_ip
from gateway.metrics.recorder import Metrics
from gateway.services import ServiceKey, Services
from gateway.settings import Settings
from gateway.store import StoreUnavailable
from gateway.webhooks.service import WebhookService
from gateway.webhooks.signature import (
    MAX_WEBHOOK_BODY_BYTES,
    WebhookSignatureError,
    parse_webhook_secrets,
    verify_signature,
)

__all__ = ["WEBHOOKS", "WEBHOOK_PATH", "WebhookRoute"]

WEBHOOK_PATH: Final = "/webhooks/stripe"
WEBHOOKS: Final = ServiceKey[WebhookService]("webhooks")
SIGNATURE_HEADER: Final = "Stripe-Signature"
UNKNOWN_TYPE: Final = "unknown"
"""The type a delivery is counted under in the metrics when it was not recorded (its body is not trusted)."""


def _answer(status: int, **fields: object) -> web.Response:
    return web.Response(status=status, body=codec.encode(fields), content_type="application/json")


class WebhookRoute:
    def __init__(self, settings: Settings, services: Services, metrics: Metrics) -> None:
        self._secrets = parse_webhook_secrets(settings.stripe_webhook_secret)
        self._services = services
        self._metrics = metrics
        self._body_timeout = settings.gateway_body_timeout

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            response = _answer(405, error="Stripe webhooks are POSTed")
            response.headers["allow"] = "POST"
            return response
        try:
            async with asyncio.timeout(self._body_timeout):
                body = await _read_body(request)
        except TimeoutError:  # a body trickling in slower than GATEWAY_BODY_TIMEOUT allows: Stripe never does
            self._metrics.webhook(UNKNOWN_TYPE, "rejected")
            response = _answer(408, error="The request body took too long to arrive")
            response.force_close()
            return response
        if body is None:
            self._metrics.webhook(UNKNOWN_TYPE, "rejected")
            logger.bind(contentLength=request.content_length).warning("webhook_body_too_large")
            return _answer(413, error=f"A Stripe event is never larger than {MAX_WEBHOOK_BODY_BYTES} bytes")
        if not self._secrets or WEBHOOKS not in self._services:
            self._metrics.webhook(UNKNOWN_TYPE, "failed")
            logger.error("webhook_not_configured")  # Stripe keeps retrying until STRIPE_WEBHOOK_SECRET is set
            return _answer(503, error="Webhooks are not configured on this gateway")
        try:
            verify_signature(body, request.headers.get(SIGNATURE_HEADER), self._secrets)
        except WebhookSignatureError as invalid:
            self._metrics.webhook(UNKNOWN_TYPE, "rejected")
            logger.bind(
                reason=invalid.reason, bodyBytes=len(body), remote=anonymized_ip(client_address(request))
            ).warning("webhook_signature_invalid")
            return _answer(400, error=str(invalid))
        try:
            receipt = await self._services[WEBHOOKS].receive(body)
        except StoreUnavailable as unavailable:
            self._metrics.webhook(UNKNOWN_TYPE, "failed")
            logger.bind(error=str(unavailable)).warning("webhook_store_unavailable")
            return _answer(503, error="The gateway cannot record events right now; Stripe will retry")
        except Exception:
            self._metrics.webhook(UNKNOWN_TYPE, "failed")  # a 500 (logged with its traceback): Stripe retries
            raise
        self._metrics.webhook(receipt.event_type, receipt.outcome.value)
        return _answer(200, received=True, eventId=receipt.event_id, outcome=receipt.outcome.value)


async def _read_body(request: web.Request) -> bytes | None:
    """The whole body, or None as soon as it is known to exceed the limit (without reading the rest)."""
    if request.content_length is not None and request.content_length > MAX_WEBHOOK_BODY_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(64 * 1024):
        size += len(chunk)
        if size > MAX_WEBHOOK_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
