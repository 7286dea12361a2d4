"""What a procedure knows about the call it serves: no HTTP, no aiohttp, just facts."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.services import Services
from gateway.settings import Settings

__all__ = ["CallContext", "Caller"]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling, once authentication has established it (filled by the security layer)."""

    user_id: str
    roles: frozenset[str] = frozenset()


@dataclass(slots=True)
class CallContext:
    """Per-request context, shared by every call of a batch (like tRPC's `createContext`)."""

    request_id: str
    settings: Settings
    caller: Caller | None = None
    connection_params: dict[str, str] | None = None
    transport: str = "http"
    services: Services = field(default_factory=Services)
    """The application's services (payments, ...), shared by every request."""
    extras: dict[str, object] = field(default_factory=dict)
