"""The call context of an HTTP request, as /trpc and /rpc both build it: who calls (bearer token), from where
(client address), with which guest proof (X-Client-Secret)."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from gateway.auth.tokens import BearerAuth
from gateway.context import CLIENT_SECRET_HEADER, CallContext
from gateway.http.client_address import client_address
from gateway.http.observe import REQUEST_ID
from gateway.services import Services
from gateway.settings import Settings

__all__ = ["CallContextFactory"]

TRANSPORT: Final = "http"
_GUEST: Final[tuple[None, None]] = (None, None)


class CallContextFactory:
    """Built once per route with the application's settings and services."""

    def __init__(self, settings: Settings, services: Services) -> None:
        self._settings = settings
        self._services = services
        self._auth = BearerAuth(settings)

    def __call__(self, request: web.Request) -> CallContext:
        headers = request.headers
        authorization = headers.get("authorization")
        # A guest's request (no token) does not go through the token check's call at all.
        caller, token_problem = self._auth.caller_or_none(authorization) if authorization else _GUEST
        # Positional: matching seven keyword arguments costs as much as building the context (every request).
        return CallContext(
            request[REQUEST_ID],
            self._settings,
            caller,
            token_problem,
            client_address(request),
            headers.get(CLIENT_SECRET_HEADER),
            None,  # connection_params: the resolver reads them
            TRANSPORT,
            self._services,
        )
