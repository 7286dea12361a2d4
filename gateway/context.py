"""What a procedure knows about the call it serves: no HTTP, no aiohttp, just facts."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from gateway.services import Services
from gateway.settings import Settings

__all__ = ["CLIENT_SECRET_HEADER", "CallContext", "Caller"]


CLIENT_SECRET_HEADER = "x-client-secret"  # noqa: S105 - a header name
"""Where a guest may send its order's client secret instead of the input's `clientSecret`."""


@dataclass(frozen=True, slots=True)
class Caller:
    """A signed-in caller, as their bearer token proves: the user id (`sub`) and roles."""

    user_id: str
    roles: frozenset[str] = frozenset()

    def has_role(self, role: str) -> bool:
        """`admin` holds every role."""
        return role in self.roles or "admin" in self.roles


class CallContext(msgspec.Struct):
    """Per-request context, shared by every call of a batch (like tRPC's `createContext`). A msgspec Struct, not a
    dataclass: built in C on every request, for half the instructions."""

    request_id: str
    settings: Settings
    caller: Caller | None = None
    """None: no valid bearer token (a guest, or a refused token: see `token_problem`)."""
    token_problem: str | None = None
    """Why a presented token was refused (`expired`, `bad signature`, ...), for the UNAUTHORIZED message."""
    client: str = ""
    """The client's address (through trusted proxies), which rate limits count per."""
    client_secret: str | None = None
    """A guest's `X-Client-Secret` header: its order's client secret, kept out of GET URLs (and so out of proxies'
    and CDNs' access logs). An input's `clientSecret` field wins over it."""
    connection_params: dict[str, str] | None = None
    transport: str = "http"
    services: Services = msgspec.field(default_factory=Services)
    """The application's services (payments, ...), shared by every request."""
