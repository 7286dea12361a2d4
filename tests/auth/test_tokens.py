"""Bearer tokens: only HS256 JWTs signed with JWT_SECRET, with `exp` and `sub`, within the leeway, for this
issuer and audience when configured. Everything else is refused with a reason that never quotes the token."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.auth.tokens import BearerAuth, TokenRefused, issue_token
from gateway.context import Caller
from gateway.settings import Settings
from tests.support.tokens import TEST_JWT_SECRET

SETTINGS = Settings(jwt_secret=TEST_JWT_SECRET, gateway_jwt_leeway=30)
AUTH = BearerAuth(SETTINGS)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signed(claims: dict[str, Any], *, key: str = TEST_JWT_SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "alice", "iat": now, "exp": now + 600, **overrides}


def _refusal(token: str, auth: BearerAuth = AUTH) -> str:
    with pytest.raises(TokenRefused) as refused:
        auth.caller(f"Bearer {token}")
    assert token not in refused.value.reason
    return refused.value.reason


def test_a_valid_token_names_the_user_and_roles() -> None:
    token = _signed(_claims(sub="user-42", roles=["staff", "admin"]))
    assert AUTH.caller(f"Bearer {token}") == Caller("user-42", frozenset({"staff", "admin"}))
    assert AUTH.caller(f"bearer   {token}  ") == Caller("user-42", frozenset({"staff", "admin"}))


def test_the_gateway_token_command_signs_tokens_the_gateway_accepts() -> None:
    token = issue_token(SETTINGS, "ops", frozenset({"admin"}), 60)
    caller = AUTH.caller(f"Bearer {token}")
    assert caller.user_id == "ops"
    assert caller.has_role("admin")
    assert caller.has_role("staff")  # admin holds every role


def test_alg_none_is_refused() -> None:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(_claims(roles=["admin"])).encode())
    assert _refusal(f"{header}.{payload}.") == "algorithm not allowed"


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # signing the attacker's token
@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_other_hmac_algorithms_are_refused_even_with_the_right_secret(algorithm: str) -> None:
    assert _refusal(_signed(_claims(), algorithm=algorithm)) == "algorithm not allowed"


def test_an_rs256_header_over_an_hmac_signature_is_refused() -> None:
    """The classic confusion: a token claiming RS256, signed with HMAC over the secret as if it were a key."""
    header = _b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(_claims(roles=["admin"])).encode())
    forged_signature = _b64(b"\x00" * 32)
    assert _refusal(f"{header}.{payload}.{forged_signature}") == "algorithm not allowed"


def test_a_token_signed_with_another_secret_is_forged() -> None:
    assert _refusal(_signed(_claims(), key="another-secret-of-the-same-length-0123456789")) == "bad signature"


def test_a_token_with_its_payload_changed_is_forged() -> None:
    header, _, signature = _signed(_claims()).split(".")
    payload = _b64(json.dumps(_claims(roles=["admin"])).encode())
    assert _refusal(f"{header}.{payload}.{signature}") == "bad signature"


def test_an_expired_token_is_refused_beyond_the_leeway_only() -> None:
    now = int(time.time())
    assert _refusal(_signed(_claims(exp=now - 120))) == "expired"
    assert AUTH.caller(f"Bearer {_signed(_claims(exp=now - 5))}").user_id == "alice"  # within 30 s of skew


def test_a_token_not_valid_yet_is_refused() -> None:
    assert _refusal(_signed(_claims(nbf=int(time.time()) + 600))) == "not valid yet"


@pytest.mark.parametrize("claim", ["exp", "sub"])
def test_exp_and_sub_are_required(claim: str) -> None:
    claims = _claims()
    del claims[claim]
    assert _refusal(_signed(claims)) == f"missing claim {claim}"


@pytest.mark.parametrize(
    "roles", [pytest.param("admin", id="a-string"), pytest.param([1], id="not-names"), [""], ["x"] * 40]
)
def test_roles_must_be_a_short_list_of_names(roles: object) -> None:
    assert _refusal(_signed(_claims(roles=roles))) == "roles is not a list of names"


@pytest.mark.parametrize("sub", ["", 42, "x" * 201])
def test_sub_must_be_a_user_id(sub: object) -> None:
    assert _refusal(_signed(_claims(sub=sub))) in ("sub is not a user id", "malformed")


def test_issuer_and_audience_are_checked_when_configured() -> None:
    strict = BearerAuth(
        Settings(
            jwt_secret=TEST_JWT_SECRET, gateway_jwt_issuer="https://auth.shop", gateway_jwt_audience="pay"
        )
    )
    good = _signed(_claims(iss="https://auth.shop", aud="pay"))
    assert strict.caller(f"Bearer {good}").user_id == "alice"
    assert _refusal(_signed(_claims(iss="https://evil", aud="pay")), strict) == "issued for another service"
    assert (
        _refusal(_signed(_claims(iss="https://auth.shop", aud="other")), strict)
        == "issued for another service"
    )
    assert _refusal(_signed(_claims(aud="pay")), strict) == "missing claim iss"
    # Without settings, a token naming an audience is still accepted (nothing to compare it with).
    assert AUTH.caller(f"Bearer {good}").user_id == "alice"


def test_without_a_jwt_secret_no_token_is_accepted() -> None:
    assert _refusal(_signed(_claims()), BearerAuth(Settings())) == "no JWT_SECRET is configured"


@pytest.mark.parametrize(
    "header",
    [
        "Basic YWxpY2U6cGFzcw==",
        "Bearer",
        "Bearer ",
        "Token abc",
        "Bearer not.a.jwt",
        "Bearer \udcff\udcfe.\udcff.x",
        "Bearer " + "a" * 5000,
    ],
)
def test_anything_else_is_refused_without_an_exception(header: str) -> None:
    with pytest.raises(TokenRefused):
        AUTH.caller(header)
    assert AUTH.caller_or_none(header)[0] is None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=600))
def test_arbitrary_headers_are_refused_or_accepted_never_raised(header: str) -> None:
    caller, reason = AUTH.caller_or_none(header)
    assert (caller is None) != (reason is None) or (caller is None and reason is None and not header)


def test_no_header_is_no_caller_and_no_problem() -> None:
    assert AUTH.caller_or_none(None) == (None, None)
    assert AUTH.caller_or_none("") == (None, None)
