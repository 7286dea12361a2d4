"""Bearer tokens: HS256 JWTs signed with JWT_SECRET, naming the user (`sub`) and their roles (`roles`).

Only HS256 is accepted (`alg: none`, RS256 with the secret as a "public key", and every other algorithm are
refused), `exp` is required, and `iss`/`aud` are checked when configured. The reason a token is refused is logged
(`bearer_token_refused`) and told to the caller only as UNAUTHORIZED where a token is needed; the token itself is
never logged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final

import jwt
from loguru import logger

from gateway.context import Caller
from gateway.settings import Settings

__all__ = ["ALGORITHM", "BearerAuth", "TokenRefused", "issue_token"]

ALGORITHM: Final = "HS256"
MAX_TOKEN_BYTES: Final = 4096
MAX_ROLES: Final = 32


class TokenRefused(Exception):
    """A token was presented and is not valid; `reason` is safe to log (never the token)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class _Claims:
    sub: str
    roles: frozenset[str]


def _claims(payload: dict[str, object]) -> _Claims:
    sub = payload.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > 200:
        raise TokenRefused("sub is not a user id")
    raw_roles = payload.get("roles", [])
    if (
        not isinstance(raw_roles, list)
        or len(raw_roles) > MAX_ROLES
        or not all(isinstance(name, str) and 0 < len(name) <= 64 for name in raw_roles)
    ):
        raise TokenRefused("roles is not a list of names")
    return _Claims(sub, frozenset(raw_roles))


class BearerAuth:
    """Reads `Authorization: Bearer <JWT>` headers. Create once; `caller` is safe to call on any header."""

    def __init__(self, settings: Settings) -> None:
        self._secret = settings.jwt_secret.encode()
        self._issuer = settings.gateway_jwt_issuer or None
        self._audience = settings.gateway_jwt_audience or None
        self._leeway = settings.gateway_jwt_leeway
        self._options: jwt.types.Options = {
            "require": ["exp", "sub"],
            "verify_aud": self._audience is not None,
            "verify_iss": self._issuer is not None,
        }

    def caller(self, authorization: str) -> Caller:
        """The caller a header proves; TokenRefused (with a loggable reason) otherwise."""
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise TokenRefused("not a bearer token")
        if len(token) > MAX_TOKEN_BYTES:
            raise TokenRefused("token too long")
        if not self._secret:
            raise TokenRefused("no JWT_SECRET is configured")
        try:
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                options=self._options,
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway,
            )
        except jwt.ExpiredSignatureError:
            raise TokenRefused("expired") from None
        except jwt.InvalidAlgorithmError:
            raise TokenRefused("algorithm not allowed") from None
        except jwt.InvalidSignatureError:
            raise TokenRefused("bad signature") from None
        except jwt.MissingRequiredClaimError as error:
            raise TokenRefused(f"missing claim {error.claim}") from None
        except (jwt.InvalidIssuerError, jwt.InvalidAudienceError):
            raise TokenRefused("issued for another service") from None
        except jwt.ImmatureSignatureError:
            raise TokenRefused("not valid yet") from None
        except jwt.InvalidTokenError:
            raise TokenRefused("malformed") from None
        except Exception:
            raise TokenRefused("malformed") from None
        claims = _claims(payload)
        return Caller(user_id=claims.sub, roles=claims.roles)

    def caller_or_none(self, authorization: str | None) -> tuple[Caller | None, str | None]:
        """(caller, None) for a valid token; (None, reason) for a refused one; (None, None) without a header."""
        if not authorization:
            return None, None
        try:
            return self.caller(authorization), None
        except TokenRefused as refused:
            logger.bind(reason=refused.reason).warning("bearer_token_refused")
            return None, refused.reason


def issue_token(
    settings: Settings, user_id: str, roles: frozenset[str] = frozenset(), ttl_seconds: float = 900
) -> str:
    """A token this gateway accepts (for operators and tests: `gateway token`); the app's own sign-in service
    issues the users' tokens with the same secret."""
    if not settings.jwt_secret:
        raise ValueError("JWT_SECRET is not set: no token can be signed")
    now = int(time.time())
    claims: dict[str, object] = {"sub": user_id, "iat": now, "exp": now + int(ttl_seconds)}
    if roles:
        claims["roles"] = sorted(roles)
    if settings.gateway_jwt_issuer:
        claims["iss"] = settings.gateway_jwt_issuer
    if settings.gateway_jwt_audience:
        claims["aud"] = settings.gateway_jwt_audience
    return jwt.encode(claims, settings.jwt_secret, algorithm=ALGORITHM)
