"""Bearer tokens for the fuzz runs: correctly signed ones, forged ones and junk, each knowing what the gateway
must make of it.

Tokens are built here by hand (base64url header, payload, HMAC), not with PyJWT, which the gateway verifies with:
the test then shares no code with what it checks, and can sign payloads no JWT library would write (a payload that
is a list, claims of any JSON type).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any, Final

from hypothesis import strategies as st

from tests.trpc.test_request_properties import json_values, texts

__all__ = [
    "AUDIENCE",
    "ISSUER",
    "JWT_SECRET",
    "Bearer",
    "any_roles_bearers",
    "bearers",
    "make_token",
    "role_names",
    "valid_claims",
]

JWT_SECRET: Final = "fuzz-jwt-secret-0123456789abcdef-0123456789"
ISSUER: Final = "https://auth.fuzz.test"
AUDIENCE: Final = "payment-gateway"
ROLE_NAMES: Final = ["admin", "staff", "support", "ADMIN", " admin"]
_DIGESTS: Final = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_token(payload: object, key: str = JWT_SECRET, algorithm: str = "HS256") -> str:
    """A JWT of `payload` (any JSON value) signed with `key` under `algorithm` (`none`: unsigned)."""
    signing_input = (
        _b64(json.dumps({"alg": algorithm, "typ": "JWT"}).encode()) + "." + _b64(json.dumps(payload).encode())
    )
    if algorithm == "none":
        return signing_input + "."
    digest = hmac.new(key.encode(), signing_input.encode(), _DIGESTS[algorithm]).digest()
    return signing_input + "." + _b64(digest)


@dataclass(frozen=True)
class Bearer:
    """An `Authorization` header (None: none sent) and what the gateway must make of it."""

    header: str | None
    kind: str
    accepted: bool | None
    """True: it proves `sub` with `roles`; False: it proves nobody; None: not known here (random claims)."""
    sub: str | None = None
    roles: frozenset[str] = frozenset()
    claims: Any = field(default=None, compare=False)


def valid_claims(sub: str, roles: list[str] | None) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {"sub": sub, "exp": now + 3600, "iat": now, "iss": ISSUER, "aud": AUDIENCE}
    if roles is not None:
        claims["roles"] = roles
    return claims


subs = st.text(min_size=1, max_size=200)
role_lists = st.lists(st.sampled_from(ROLE_NAMES) | st.text(min_size=1, max_size=64), max_size=6)


def _roles_of_kind(kind: str) -> st.SearchStrategy[list[str] | None]:
    """A valid `roles` claim: some of the names the router checks, any names, or none at all (no claim)."""
    if kind == "names":
        return st.lists(st.sampled_from(ROLE_NAMES), min_size=1, max_size=3)
    return role_lists if kind == "any" else st.none()


def role_names(value: object) -> bool:
    """Whether a `roles` claim is one the gateway accepts: a list of at most 32 names of 1-64 characters. Anything
    else (not a list, too many, items that are not names: numbers, lists, objects) refuses the whole token."""
    return (
        isinstance(value, list)
        and len(value) <= 32
        and all(isinstance(item, str) and 0 < len(item) <= 64 for item in value)
    )


nested_roles = st.lists(json_values, max_size=3).map(lambda items: [*items, [], {"r": 1}])
"""A list whose items include a list and an object (`"roles": [[]]` once made every request carrying it a 500)."""
# Wrong `roles` claims: not a list, too many, items that are not role names, lists or objects among them.
wrong_roles: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from(["admin", 5, None, True, {"admin": True}, [[]], [{}], ["admin", ["admin"]]]),
    st.lists(st.sampled_from(ROLE_NAMES), min_size=33, max_size=40),
    st.tuples(
        st.lists(st.sampled_from(ROLE_NAMES), max_size=2),
        st.sampled_from(["", "x" * 65, 1, None, False, 2.5, [], {}, ["admin"]]),
    ).map(lambda parts: [*parts[0], parts[1]]),
    nested_roles,
    json_values.filter(lambda value: not role_names(value)),
)
wrong_subs = st.sampled_from(["", 5, None, ["u"], {"id": "u"}, "u" * 201, True])
claim_names = st.sampled_from(["sub", "exp", "iat", "nbf", "iss", "aud", "roles", "jti"]) | texts


@st.composite
def _valid(draw: st.DrawFn) -> Bearer:
    sub = draw(subs)
    roles = draw(st.sampled_from(["names", "names", "any", "none"]).flatmap(_roles_of_kind))
    token = make_token(valid_claims(sub, roles))
    scheme = draw(st.sampled_from(["Bearer", "Bearer", "bearer", "BEARER"]))
    header = draw(st.sampled_from([f"{scheme} {token}", f"  {scheme} {token}  ", f"{scheme}  {token}"]))
    return Bearer(header, "valid", True, sub, frozenset(roles or ()))


REFUSED_KINDS: Final = [
    "wrong secret",
    "bad roles",
    "not bearer",
    "no token",
    "alg none",
    "other algorithm",
    "expired",
    "not yet valid",
    "no exp",
    "no sub",
    "wrong issuer",
    "wrong audience",
    "bad sub",
    "payload not an object",
    "tampered",
    "too long",
    "junk",
]


@st.composite
def _refused(draw: st.DrawFn) -> Bearer:
    """A header that proves nobody, of a kind the gateway must see through."""
    claims = valid_claims(draw(subs), draw(st.none() | role_lists))
    now = int(time.time())
    # Near-uniform over the kinds: `sampled_from` favours its first entries strongly.
    kind = REFUSED_KINDS[draw(st.integers(0, 2**16)) % len(REFUSED_KINDS)]
    token = make_token(claims)
    if kind == "junk":
        return Bearer("Bearer " + draw(texts.filter(_sendable)), kind, False)
    if kind == "not bearer":
        scheme = draw(st.sampled_from(["Basic", "Token", "JWT", "Bearer:", "Bear", "Bearer\t"]))
        return Bearer(f"{scheme} {token}", kind, False)
    if kind == "no token":
        return Bearer(draw(st.sampled_from(["Bearer", "Bearer ", "bearer    "])), kind, False)
    if kind == "wrong secret":
        token = make_token(claims, key=draw(st.sampled_from(["", "x", JWT_SECRET + "x", JWT_SECRET[:-1]])))
    elif kind == "alg none":
        token = make_token(claims, algorithm="none")
    elif kind == "other algorithm":
        token = make_token(claims, algorithm=draw(st.sampled_from(["HS384", "HS512"])))
    elif kind == "expired":
        token = make_token({**claims, "exp": now - 3600})
    elif kind == "not yet valid":
        token = make_token({**claims, "nbf": now + 3600})
    elif kind in ("no exp", "no sub"):
        token = make_token({k: v for k, v in claims.items() if k != kind.removeprefix("no ")})
    elif kind == "wrong issuer":
        token = make_token({**claims, "iss": draw(st.sampled_from(["", "https://evil.test", 5]))})
    elif kind == "wrong audience":
        token = make_token({**claims, "aud": draw(st.sampled_from(["", "other", ["other"], 5]))})
    elif kind == "bad sub":
        token = make_token({**claims, "sub": draw(wrong_subs)})
    elif kind == "bad roles":
        token = make_token({**claims, "roles": draw(wrong_roles)})
    elif kind == "payload not an object":
        token = make_token(draw(st.lists(json_values, max_size=3) | st.sampled_from([None, 5, "sub"])))
    elif kind == "tampered":
        # In the signed part only: a signature's last character carries bits that base64 decoding drops, so
        # changing it may leave the signature as it was.
        at = draw(st.integers(0, token.rindex(".") - 1))
        replacement = draw(st.sampled_from("AQgw-_=x").filter(lambda char: char != token[at]))
        token = token[:at] + replacement + token[at + 1 :]
    else:  # too long
        token += "A" * draw(st.integers(4097 - len(token), 5000))
    return Bearer(f"Bearer {token}", kind, False)


@st.composite
def _random_claims(draw: st.DrawFn, roles: st.SearchStrategy[Any]) -> Bearer:
    """Correctly signed, with any claims: whether the gateway accepts them is not decided here."""
    claims: dict[str, object] = draw(st.dictionaries(claim_names, json_values, max_size=5))
    if draw(st.booleans()):
        claims.update(valid_claims(draw(subs), None))
    if "roles" in claims or draw(st.booleans()):
        claims["roles"] = draw(roles)
    return Bearer(f"Bearer {make_token(claims)}", "random claims", None, claims=claims)


def _sendable(text: str) -> bool:
    """A header value an HTTP client can send as UTF-8 (no control character but tab)."""
    return not any((char < " " and char != "\t") or char == "\x7f" for char in text)


def bearers() -> st.SearchStrategy[Bearer]:
    """A valid token, a refused one, correctly signed random claims (`roles` any JSON, lists and objects among
    its items included), no header or an empty one."""
    roles = json_values | role_lists | wrong_roles

    def kind(name: str) -> st.SearchStrategy[Bearer]:
        if name == "valid":
            return _valid()
        if name == "refused":
            return _refused()
        if name == "random claims":
            return _random_claims(roles)
        return st.just(Bearer(None if name == "none" else "", name, False))

    return st.sampled_from(
        ["refused", "valid", "refused", "valid", "random claims", "none", "empty"]
    ).flatmap(kind)


def any_roles_bearers() -> st.SearchStrategy[Bearer]:
    """Valid tokens but for the `roles` claim, which may be anything (lists and objects among its items too): each
    knows its answer, accepted as `sub` with those roles when they are a list of names (`role_names`), else refused
    as a whole."""
    roles = json_values | role_lists | wrong_roles

    def bearer(sub: str, roles: Any) -> Bearer:
        claims = {**valid_claims(sub, None), "roles": roles}
        header = f"Bearer {make_token(claims)}"
        if role_names(roles):
            return Bearer(header, "any roles: names", True, sub, frozenset(roles), claims=claims)
        return Bearer(header, "any roles: refused", False, claims=claims)

    return st.builds(bearer, subs, roles)
