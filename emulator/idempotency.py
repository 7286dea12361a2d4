# SPDX-License-Identifier: GPL-3.0-or-later
# Test/demo-only Stripe emulator that patches localstripe (GPL-3.0-or-later); not shipped, no gateway module imports it.
"""`Idempotency-Key` as Stripe honours it; localstripe ignores the header, so a retried create made a second object.

A POST with a key is answered once per (Authorization, key): a replay with the same parameters gets the stored
status and body with `Idempotent-Replayed: true`; other parameters or another endpoint get a 400
`idempotency_error` (the SDK's `IdempotencyError`). Requests with the same key are serialised, so two concurrent
ones never both execute: the second waits and replays the first's answer. Real Stripe instead answers a concurrent
duplicate with 409 `idempotency_error` ("another in-progress request"), which the SDK retries after a backoff; the
outcome for the caller is the same (one object), but the emulator does not return that 409.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from urllib.parse import parse_qsl

from aiohttp import web
from aiohttp.typedefs import Handler

from emulator.patches import store

__all__ = ["idempotency_middleware"]

_NOT_STORED = frozenset({401, 409, 429})
"""Answers given before the request ran (authentication, conflicts, rate limits), which Stripe does not keep."""


@dataclass(frozen=True)
class _Stored:
    path: str
    params: object
    status: int
    body: bytes
    content_type: str


_responses: dict[tuple[str, str], _Stored] = {}
_locks: dict[tuple[str, str], asyncio.Lock] = {}


def _forget_all() -> None:
    _responses.clear()
    _locks.clear()


store.on_reset(_forget_all)


def _params(body: bytes, content_type: str) -> object:
    """The request's parameters in a comparable form: Stripe compares parameters, not their order in the body."""
    text = body.decode("utf-8", "replace")
    if content_type == "application/json":
        try:
            return json.dumps(json.loads(text), sort_keys=True)
        except ValueError:
            return text
    return tuple(sorted(parse_qsl(text, keep_blank_values=True)))


def _idempotency_error(message: str) -> web.Response:
    return web.json_response({"error": {"type": "idempotency_error", "message": message}}, status=400)


def _replay(stored: _Stored, path: str, params: object, key: str) -> web.Response:
    if stored.path != path:
        return _idempotency_error(
            f"Keys for idempotent requests can only be used for the same endpoint they were first used for "
            f"('{stored.path}' vs '{path}'). Try using a key other than '{key}' if you meant to execute a "
            f"different request."
        )
    if stored.params != params:
        return _idempotency_error(
            f"Keys for idempotent requests can only be used with the same parameters they were first used with. "
            f"Try using a key other than '{key}' if you meant to execute a different request."
        )
    response = web.Response(status=stored.status, body=stored.body, content_type=stored.content_type)
    response.headers["Idempotent-Replayed"] = "true"
    response.headers["Idempotency-Key"] = key
    return response


@web.middleware
async def idempotency_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost middleware: answers replays before localstripe sees them, and stores first answers."""
    key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or not key or not request.path.startswith("/v1/"):
        return await handler(request)
    cache_key = (request.headers.get("Authorization", ""), key)
    params = _params(await request.read(), request.content_type)  # read() keeps the body for the handler
    lock = _locks.setdefault(cache_key, asyncio.Lock())
    async with lock:
        stored = _responses.get(cache_key)
        if stored is not None:
            return _replay(stored, request.path, params, key)
        response = await handler(request)
        if isinstance(response, web.Response) and response.status not in _NOT_STORED:
            body = response.body
            if isinstance(body, bytes):
                _responses[cache_key] = _Stored(
                    request.path, params, response.status, body, response.content_type
                )
        response.headers["Idempotency-Key"] = key
        return response
