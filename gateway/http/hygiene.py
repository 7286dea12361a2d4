"""Headers every response carries: security headers, `Cache-Control: no-store`, HSTS over https, CORS.

The request observer picks, per request, one of a few header sets prebuilt for its route (by scheme and, on the
CORS routes, by allowed origin), puts it on the request and adds it to the response its route returns (or to the
error it raises); a route that sends its head itself (the JSONL streams of /trpc) adds it with
`add_before_prepare`. So a response costs one `extend`, nothing computed, and no `on_response_prepare` signal,
whose coroutine per response aiohttp would otherwise run on every request. `secure_unobserved`, that signal's
receiver, covers what no route observed (aiohttp's answer to an `Expect` header); responses aiohttp writes without a
request (a malformed request line) get the static headers from the protocol (`gateway.http.protocol`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from aiohttp import web

from gateway.http.cors import Cors

__all__ = [
    "PREPARED_RESPONSE",
    "RESPONSE_HEADERS",
    "SECURITY_HEADERS",
    "RouteHeaders",
    "add_before_prepare",
    "secure_unobserved",
]

SECURITY_HEADERS: Final[dict[str, str]] = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    # The gateway serves JSON only: nothing it sends may run scripts, load anything or be framed.
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
}
NO_STORE: Final[Mapping[str, str]] = {"cache-control": "no-store"}
"""Payment data (client secrets, statuses) must not be kept by browsers or intermediaries; health and metrics are
only true now, so they say so too (they set it themselves)."""
HSTS: Final[Mapping[str, str]] = {"strict-transport-security": "max-age=31536000"}
VARY_ORIGIN: Final[Mapping[str, str]] = {"vary": "Origin"}
"""Added as a header of its own, next to the route's `vary: trpc-accept, accept` (both apply)."""

RESPONSE_HEADERS: Final = web.RequestKey("response_headers", dict[str, str])
"""The header set of this request's response, chosen by the observer."""
PREPARED_RESPONSE: Final = web.RequestKey("prepared_response", web.StreamResponse)
"""The response whose head went out: a handler that times out after that cannot be answered 408 any more."""


class RouteHeaders:
    """The header sets of one route, built once."""

    def __init__(self, *, no_store: bool, cors: Cors | None) -> None:
        base = {**SECURITY_HEADERS, **(NO_STORE if no_store else {}), **(VARY_ORIGIN if cors else {})}
        self._by_scheme: tuple[dict[str, str], dict[str, str]] = (base, {**base, **HSTS})
        """(http, https)"""
        self._by_origin: dict[str, tuple[dict[str, str], dict[str, str]]] = {
            origin: ({**base, **extra}, {**base, **HSTS, **extra})
            for origin, extra in (cors.response_headers.items() if cors else ())
        }

    def plain(self, https: bool) -> dict[str, str]:
        """The set without CORS headers (a request from no or another origin, a preflight)."""
        return self._by_scheme[https]

    def choose(self, request: web.Request, https: bool) -> dict[str, str]:
        """The set for `request`: with CORS headers if it comes from an allowed origin (CORS routes only)."""
        if self._by_origin:
            origin = request.headers.get("Origin")
            if origin is not None:
                sets = self._by_origin.get(origin)
                if sets is not None:
                    return sets[https]
        return self._by_scheme[https]


def add_before_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """For a response its route sends itself: add the request's header set, and remember the response as the one
    started (a handler timing out after that cannot be answered 408 any more)."""
    response.headers.extend(request[RESPONSE_HEADERS])
    request[PREPARED_RESPONSE] = response


async def secure_unobserved(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: the static headers on a response no route observed (the observer adds its own)."""
    if RESPONSE_HEADERS not in request:
        response.headers.extend(SECURITY_HEADERS)
