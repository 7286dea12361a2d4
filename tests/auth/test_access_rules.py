"""Every production procedure has the access rule this table gives it, and the gateway enforces it over HTTP.

The table is written by hand on purpose: a new procedure makes the first test fail until someone decides here,
in review, who may call it (registration already refuses a procedure without a rule)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import msgspec
import pytest

from gateway.auth.access import ADMIN, PUBLIC, STAFF, USER, Access
from gateway.registry import Registry
from gateway.services import Services
from gateway.settings import Settings
from procedures import build_router
from tests.support.server import RunningGateway, running_gateway
from tests.support.tokens import TEST_JWT_SECRET, admin_headers, bearer_headers, staff_headers

ACCESS_RULES: dict[str, Access] = {
    "stripe.getConfig": PUBLIC,
    "stripe.createPaymentIntent": USER,
    "stripe.getPaymentStatus": USER,
    "stripe.cancelPaymentIntent": USER,
    "stripe.refund": ADMIN,
    "stripe.checkNativePayAvailability": PUBLIC,
    "stripe.getPaymentQrCode": USER,
    "stripe.verifyPaymentQrCode": STAFF,
}

CALLERS: dict[str, dict[str, str]] = {
    "anonymous": {},
    "forged token": bearer_headers("mallory", ["admin"], secret="not-the-gateways-secret-0123456789abcdef"),
    "user": bearer_headers("alice"),
    "staff": staff_headers(),
    "admin": admin_headers(),
}


def _expected(rule: Access, caller: str) -> str | None:
    """The error the guard answers, or None when the call gets past it."""
    if rule.kind == "public":
        return None
    if caller in ("anonymous", "forged token"):
        return "UNAUTHORIZED"
    if rule.kind == "user" or caller == "admin" or (caller == "staff" and rule.role == "staff"):
        return None
    return "FORBIDDEN"


def test_every_procedure_has_the_rule_this_table_gives_it() -> None:
    registered = {procedure.path: procedure.access for procedure in Registry(build_router())}
    assert registered == ACCESS_RULES


def test_registering_a_procedure_without_a_rule_is_impossible() -> None:
    from gateway.registry import Router

    def orphan(ctx: object) -> int:
        return 1

    with pytest.raises(TypeError):
        Router().query(orphan)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="access must be"):
        Router().query(orphan, access="public")  # type: ignore[call-overload]


@pytest.fixture
async def gateway() -> AsyncIterator[RunningGateway]:
    """The production procedures with no payment services behind them: every call below either stops at the guard
    or at input validation (the input is deliberately invalid), so nothing reaches Stripe or a store."""
    settings = Settings(jwt_secret=TEST_JWT_SECRET, gateway_rate_limit_client=0, gateway_rate_limit_user=0)
    async with running_gateway(settings, build_router(), Services()) as running:
        yield running


@pytest.mark.parametrize("caller", list(CALLERS))
@pytest.mark.parametrize("path", list(ACCESS_RULES))
async def test_the_rule_is_enforced_for_every_caller(gateway: RunningGateway, path: str, caller: str) -> None:
    procedure = Registry(build_router()).get(path)
    assert procedure is not None
    url = f"{gateway.trpc_url}/{path}"
    invalid_input = '{"orderId": 12, "token": 12}'
    async with aiohttp.ClientSession() as http:
        if procedure.kind == "mutation":
            headers = {"content-type": "application/json", **CALLERS[caller]}
            response = await http.post(url, data=invalid_input, headers=headers)
        else:
            params = {"input": invalid_input} if procedure.input is not None else None
            response = await http.get(url, params=params, headers=CALLERS[caller])
        async with response:
            body = await response.json()
    expected = _expected(ACCESS_RULES[path], caller)
    code = body["error"]["data"]["code"] if "error" in body else None
    if expected is None:
        assert code in (None, "BAD_REQUEST"), body  # past the guard: the input is what is wrong, if anything
    else:
        assert code == expected, body


def test_the_openrpc_document_tells_generated_clients_each_methods_rule() -> None:
    document = msgspec.json.decode(Path("openrpc.json").read_bytes())
    published = {method["name"]: method["x-access"] for method in document["methods"]}
    assert published == {path: str(rule) for path, rule in ACCESS_RULES.items()}
