"""The call context of an HTTP request, as /trpc and /rpc both build it: who calls (bearer token), from where
(client address), with which guest proof (X-Client-Secret)."""

from __future__ import annotations

from aiohttp import web

from gateway.auth.tokens import BearerAuth
from gateway.context import CLIENT_SECRET_HEADER, CallContext
from gateway.http.client_address import client_address
from gateway.http.observe import REQUEST_ID
from gateway.services import Services
from gateway.settings import Settings

__all__ = ["CallContextFactory"]


class CallContextFactory:
    """Built once per route with the application's settings and services."""

    def __init__(self, settings: Settings, services: Services) -> None:
        self._settings = settings
        self._services = services
        self._auth = BearerAuth(settings)

    def __call__(self, request: web.Request) -> CallContext:
        caller, token_problem = self._auth.caller_or_none(request.headers.get("authorization"))
        return CallContext(
            request_id=request[REQUEST_ID],
            settings=self._settings,
            services=self._services,
            caller=caller,
            token_problem=token_problem,
            client=client_address(request),
            client_secret=request.headers.get(CLIENT_SECRET_HEADER),
        )
