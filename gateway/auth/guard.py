"""The one check every transport makes before a procedure reads its input: access rule, then abuse limits.

tRPC (`/trpc`) and JSON-RPC (`/rpc`) both call `admit(procedure, ctx)`; it raises the TRPCError the caller sees:
UNAUTHORIZED without a valid token where one is needed, FORBIDDEN for a missing role, TOO_MANY_REQUESTS (with
`Retry-After`) when a mutation exceeds the per-user or per-client limit.
"""

from __future__ import annotations

import ipaddress
from typing import Final

from loguru import logger

from gateway.auth.access import ADMIN_ROLE, PUBLIC, STAFF_ROLE, Access
from gateway.auth.rate_limit import RateLimiter, retry_after_header
from gateway.context import CallContext
from gateway.errors import ErrorCode, TRPCError
from gateway.registry import Procedure
from gateway.services import ServiceKey
from gateway.settings import Settings

__all__ = ["RATE_LIMITS", "RateLimits", "admit", "check_access", "client_key", "needs_admission"]


_TRUSTED_ROLES: Final = frozenset({ADMIN_ROLE, STAFF_ROLE})


class RateLimits:
    """The mutation limits of one process: per signed-in user and per client address."""

    def __init__(self, settings: Settings) -> None:
        self.per_user = RateLimiter(settings.gateway_rate_limit_user)
        self.per_client = RateLimiter(settings.gateway_rate_limit_client)
        self.enabled = settings.gateway_rate_limit_user > 0 or settings.gateway_rate_limit_client > 0

    def check(self, ctx: CallContext) -> None:
        if ctx.caller is not None and ctx.caller.roles & _TRUSTED_ROLES:
            return  # staff scanning codes at a door, admins refunding a batch: trusted, short-lived tokens
        # Both buckets are asked before either is spent: a call refused by one does not use up the other.
        buckets = []
        if ctx.caller is not None:
            buckets.append((self.per_user, ctx.caller.user_id))
        if ctx.client:
            buckets.append((self.per_client, client_key(ctx.client)))
        wait = max((w for limiter, key in buckets if (w := limiter.wait(key)) is not None), default=None)
        if wait is None:
            for limiter, key in buckets:
                limiter.take(key)
            return
        logger.bind(procedureKind="mutation", signedIn=ctx.caller is not None).warning("rate_limited")
        raise TRPCError(
            ErrorCode.TOO_MANY_REQUESTS,
            "Too many payment requests; retry later",
            headers={"retry-after": retry_after_header(wait)},
        )


def client_key(address: str) -> str:
    """What the per-client limit counts by: an IPv4 address, or an IPv6 address's /64 (one subscriber's network,
    inside which it can pick any address it likes)."""
    if ":" not in address:
        return address
    try:
        return str(ipaddress.IPv6Network((address, 64), strict=False).network_address)
    except ValueError:
        return address


RATE_LIMITS: Final = ServiceKey[RateLimits]("rate_limits")


def _unauthorized(ctx: CallContext) -> TRPCError:
    if ctx.token_problem is not None:
        return TRPCError(ErrorCode.UNAUTHORIZED, f"The bearer token was refused ({ctx.token_problem})")
    return TRPCError(ErrorCode.UNAUTHORIZED, "Sign in: this procedure needs a bearer token")


def check_access(access: Access, path: str, ctx: CallContext) -> None:
    """Raise UNAUTHORIZED/FORBIDDEN unless `ctx`'s caller may call a procedure with this rule."""
    if access.kind == "public":
        return
    caller = ctx.caller
    if access.kind == "user":
        if caller is None and not (ctx.settings.gateway_guest_checkout and ctx.token_problem is None):
            raise _unauthorized(ctx)
        return
    if caller is None:
        raise _unauthorized(ctx)
    if access.role is None or not caller.has_role(access.role):
        # Worth watching (the seed: "monitor fraud attempts"): a signed-in user knocking on an admin door.
        logger.bind(procedure=path, userId=caller.user_id, needs=access.role).warning("access_denied")
        raise TRPCError(ErrorCode.FORBIDDEN, f"This procedure needs the {access.role} role")


def needs_admission(proc: Procedure) -> bool:
    """False when `admit` can never refuse a call of `proc` (a public query), so a hot path may skip it."""
    return proc.access is not PUBLIC or proc.kind == "mutation"


def admit(proc: Procedure, ctx: CallContext) -> None:
    """Everything checked before `proc` reads its input; raises the error to answer instead."""
    if proc.access is not PUBLIC:
        check_access(proc.access, proc.path, ctx)
    if proc.kind == "mutation" and RATE_LIMITS in ctx.services:
        limits = ctx.services[RATE_LIMITS]
        if limits.enabled:
            limits.check(ctx)
