"""Bearer tokens for tests, signed the way the app's sign-in service signs them (HS256 with JWT_SECRET)."""

from __future__ import annotations

import time
from collections.abc import Iterable

import jwt

from gateway.auth.tokens import issue_token
from gateway.settings import Settings

__all__ = [
    "TEST_JWT_SECRET",
    "TEST_QR_SECRET",
    "admin_headers",
    "bearer_headers",
    "staff_headers",
    "token_for",
    "unsigned_token",
]

TEST_JWT_SECRET = "test-jwt-secret-for-the-gateway-tests-0123456789"
"""JWT_SECRET of test settings that need signed-in callers (32+ characters, as the settings require)."""
TEST_QR_SECRET = "test-qr-secret-for-the-gateway-tests-abcdefghij"


def token_for(
    user: str = "alice",
    roles: Iterable[str] = (),
    *,
    secret: str = TEST_JWT_SECRET,
    ttl_seconds: float = 3600,
) -> str:
    return issue_token(Settings(jwt_secret=secret), user, frozenset(roles), ttl_seconds)


def bearer_headers(
    user: str = "alice", roles: Iterable[str] = (), *, secret: str = TEST_JWT_SECRET
) -> dict[str, str]:
    """`{"authorization": "Bearer <JWT>"}` for `user` with `roles`."""
    return {"authorization": f"Bearer {token_for(user, roles, secret=secret)}"}


def admin_headers(user: str = "ops-admin", *, secret: str = TEST_JWT_SECRET) -> dict[str, str]:
    return bearer_headers(user, ["admin"], secret=secret)


def staff_headers(user: str = "door-staff", *, secret: str = TEST_JWT_SECRET) -> dict[str, str]:
    return bearer_headers(user, ["staff"], secret=secret)


def unsigned_token(user: str = "alice", roles: Iterable[str] = ("admin",), ttl_seconds: float = 3600) -> str:
    """A forged token: well-formed claims, `alg: none`, no signature (`eyJ….eyJ….`); the gateway must refuse it."""
    claims = {"sub": user, "roles": sorted(roles), "exp": int(time.time() + ttl_seconds)}
    return jwt.encode(claims, None, algorithm="none")
