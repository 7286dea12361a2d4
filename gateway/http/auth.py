"""Who is calling: for now, only the operator's admin token (`GATEWAY_ADMIN_TOKEN`), so that admin procedures are
never open by default. Bearer JWTs for the app's users come with the security work."""

from __future__ import annotations

import hmac
from typing import Final

from gateway.context import Caller

__all__ = ["ADMIN_CALLER", "caller_from_authorization"]

ADMIN_CALLER: Final = Caller(user_id="admin-token", roles=frozenset({"admin"}))


def caller_from_authorization(authorization: str | None, admin_token: str) -> Caller | None:
    """The caller a `Authorization: Bearer …` header proves, or None. Compared in constant time."""
    if not authorization or not admin_token:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    # aiohttp hands undecodable header bytes over as lone surrogates: compare bytes, and let those through as bytes.
    if hmac.compare_digest(token.strip().encode("utf-8", "surrogatepass"), admin_token.encode()):
        return ADMIN_CALLER
    return None
