"""CORS for /trpc and /rpc (GATEWAY_CORS_ORIGINS; off when empty), as shared/reference/trpc-wire.md 8.6 asks.

Off, nothing changes: an `OPTIONS` reaches the routes, which answer it as @trpc/server does (415). On:
* a preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) from a listed origin is 204 with that
  exact origin, `GET, POST`, the requested headers that are allowed, `Access-Control-Max-Age: 600` and
  `Vary: Origin` (plus `Access-Control-Allow-Credentials: true` when GATEWAY_CORS_ALLOW_CREDENTIALS is on);
* a preflight from any other origin is 403 without any `Access-Control-Allow-*` header: the browser refuses the
  call, and the gateway's log shows a failed request naming the path, which points at a missing origin faster than
  a 204 that silently fails;
* other requests from a listed origin get `Access-Control-Allow-Origin` (that origin), `Vary: Origin` and
  `Access-Control-Expose-Headers: x-request-id, retry-after`, streamed ones included (see `gateway.http.hygiene`).
Origins are compared exactly, never with `*`: the settings check refuses wildcards.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from gateway import codec
from gateway.errors import ErrorCode
from gateway.http.setting_lists import parse_cors_origins, parse_header_names
from gateway.settings import Settings

__all__ = ["ALLOWED_HEADERS", "Cors"]

ALLOWED_HEADERS: Final = (
    "content-type",
    "authorization",
    "trpc-accept",
    "x-trpc-source",
    "trpc-batch-mode",
    "x-client-secret",
)
"""What tRPC clients send (8.6): `content-type` on every POST, the stream links' headers, the bearer token."""
MAX_AGE: Final = "600"
_FORBIDDEN_BODY: Final = codec.encode(
    {
        "error": {
            "message": "Origin not allowed",
            "code": ErrorCode.FORBIDDEN.jsonrpc_code,
            "data": {"code": ErrorCode.FORBIDDEN.name, "httpStatus": ErrorCode.FORBIDDEN.http_status},
        }
    }
)


class Cors:
    """The CORS policy of the tRPC and JSON-RPC routes, built once from the settings."""

    def __init__(self, settings: Settings) -> None:
        self.origins = frozenset(parse_cors_origins(settings.gateway_cors_origins))
        self.allowed_headers = frozenset(
            ALLOWED_HEADERS + parse_header_names(settings.gateway_cors_allow_headers)
        )
        credentials = (
            {"access-control-allow-credentials": "true"} if settings.gateway_cors_allow_credentials else {}
        )
        self._preflight_headers = {
            "access-control-allow-methods": "GET, POST",
            "access-control-max-age": MAX_AGE,
            **credentials,
        }
        self.response_headers: dict[str, dict[str, str]] = {
            origin: {
                "access-control-allow-origin": origin,
                "access-control-expose-headers": "x-request-id, retry-after",
                **credentials,
            }
            for origin in self.origins
        }
        """Origin -> what a response to it carries (besides `Vary: Origin`, which every response carries)."""

    @property
    def enabled(self) -> bool:
        return bool(self.origins)

    def preflight(self, request: web.Request) -> web.Response | None:
        """The answer to `request` if it is a preflight; None for any other `OPTIONS`, left to the route.
        (`Vary: Origin` and the security headers are added to it as to every response of the route.)"""
        origin = request.headers.get("Origin")
        if origin is None or "Access-Control-Request-Method" not in request.headers:
            return None
        if origin not in self.origins:
            return web.Response(status=403, body=_FORBIDDEN_BODY, content_type="application/json")
        headers = {"access-control-allow-origin": origin, **self._preflight_headers}
        requested = request.headers.get("Access-Control-Request-Headers")
        if requested:
            allowed = [
                name
                for name in (part.strip().lower() for part in requested.split(","))
                if name in self.allowed_headers
            ]
            if allowed:
                headers["access-control-allow-headers"] = ", ".join(allowed)
        return web.Response(status=204, headers=headers)
