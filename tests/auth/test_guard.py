"""The guard every transport runs before a procedure reads its input, over real HTTP: access rules (public, user,
guest checkout, roles) and the mutation rate limits, on /trpc and /rpc alike."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import msgspec
import pytest

from gateway.auth.access import PUBLIC, STAFF, USER
from gateway.auth.guard import RateLimits, client_key
from gateway.auth.rate_limit import MAX_KEYS, RateLimiter
from gateway.context import CallContext, Caller
from gateway.errors import ErrorCode, TRPCError
from gateway.registry import Router
from gateway.settings import Settings
from tests.support.server import RunningGateway, running_gateway
from tests.support.tokens import TEST_JWT_SECRET, bearer_headers, staff_headers, token_for


class Note(msgspec.Struct):
    text: str


class Who(msgspec.Struct):
    user: str | None
    roles: list[str]


def guard_router() -> Router:
    router = Router()

    @router.query(access=PUBLIC)
    def hello(ctx: CallContext) -> str:
        return "hello"

    @router.query(access=USER)
    def whoami(ctx: CallContext) -> Who:
        caller = ctx.caller
        return Who(caller.user_id if caller else None, sorted(caller.roles) if caller else [])

    @router.mutation(access=USER)
    def write(ctx: CallContext, input: Note) -> str:
        return input.text

    @router.mutation(access=STAFF)
    def scan(ctx: CallContext, input: Note) -> str:
        return input.text

    root = Router()
    root.include("t", router)
    return root


def _settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"jwt_secret": TEST_JWT_SECRET, **overrides}
    return Settings(**values)


@pytest.fixture
async def gateway() -> AsyncIterator[RunningGateway]:
    async with running_gateway(_settings(), guard_router()) as running:
        yield running


async def _trpc(
    http: aiohttp.ClientSession,
    gateway: RunningGateway,
    path: str,
    input: object = None,
    *,
    mutation: bool = False,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, Mapping[str, str]]:
    url = f"{gateway.trpc_url}/{path}"
    if mutation:
        response = await http.post(url, json=input, headers=headers)
    else:
        params = {"input": msgspec.json.encode(input).decode()} if input is not None else None
        response = await http.get(url, params=params, headers=headers)
    async with response:
        return response.status, await response.json(), response.headers


def _code(body: Any) -> str:
    return str(body["error"]["data"]["code"])


async def test_public_procedures_answer_anybody_even_with_a_bad_token(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    for headers in (None, {"authorization": "Bearer forged"}, bearer_headers(secret="x" * 40)):
        status, body, _ = await _trpc(http, gateway, "t.hello", headers=headers)
        assert (status, body["result"]["data"]) == (200, "hello")


async def test_user_procedures_need_a_valid_token(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    status, body, _ = await _trpc(http, gateway, "t.whoami")
    assert (status, _code(body)) == (401, "UNAUTHORIZED")
    assert body["error"]["message"] == "Sign in: this procedure needs a bearer token"

    expired = {"authorization": f"Bearer {token_for('alice', ttl_seconds=-120)}"}
    status, body, _ = await _trpc(http, gateway, "t.whoami", headers=expired)
    assert (status, _code(body)) == (401, "UNAUTHORIZED")
    assert body["error"]["message"] == "The bearer token was refused (expired)"

    status, body, _ = await _trpc(http, gateway, "t.whoami", headers=bearer_headers("alice", ["staff"]))
    assert (status, body["result"]["data"]) == (200, {"user": "alice", "roles": ["staff"]})


async def test_the_access_check_comes_before_the_input_is_read(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    """An anonymous caller learns nothing about a protected procedure's input schema."""
    status, body, _ = await _trpc(http, gateway, "t.write", {"wrong": 1}, mutation=True)
    assert (status, _code(body)) == (401, "UNAUTHORIZED")
    assert "issues" not in body["error"]["data"]


async def test_roles_are_forbidden_to_users_without_them(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    note = {"text": "x"}
    status, body, _ = await _trpc(http, gateway, "t.scan", note, mutation=True)
    assert (status, _code(body)) == (401, "UNAUTHORIZED")
    status, body, _ = await _trpc(http, gateway, "t.scan", note, mutation=True, headers=bearer_headers("bob"))
    assert (status, _code(body)) == (403, "FORBIDDEN")
    assert body["error"]["message"] == "This procedure needs the staff role"
    status, body, _ = await _trpc(http, gateway, "t.scan", note, mutation=True, headers=staff_headers())
    assert (status, body["result"]["data"]) == (200, "x")
    admin = bearer_headers("root", ["admin"])  # admin holds every role
    status, body, _ = await _trpc(http, gateway, "t.scan", note, mutation=True, headers=admin)
    assert (status, body["result"]["data"]) == (200, "x")


async def test_a_batch_checks_each_call_on_its_own(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    url = f"{gateway.trpc_url}/t.hello,t.whoami?batch=1"
    async with http.get(url) as response:
        body = await response.json()
    assert response.status == 207
    assert body[0]["result"]["data"] == "hello"
    assert body[1]["error"]["data"]["code"] == "UNAUTHORIZED"


async def test_guest_checkout_lets_callers_without_a_token_in_but_not_refused_tokens(
    http: aiohttp.ClientSession,
) -> None:
    async with running_gateway(_settings(gateway_guest_checkout=True), guard_router()) as gateway:
        status, body, _ = await _trpc(http, gateway, "t.whoami")
        assert (status, body["result"]["data"]) == (200, {"user": None, "roles": []})
        # A signed-in user whose token expired is told so, not silently turned into a guest.
        expired = {"authorization": f"Bearer {token_for('alice', ttl_seconds=-120)}"}
        status, body, _ = await _trpc(http, gateway, "t.whoami", headers=expired)
        assert (status, _code(body)) == (401, "UNAUTHORIZED")
        # Guests never hold a role.
        status, body, _ = await _trpc(http, gateway, "t.scan", {"text": "x"}, mutation=True)
        assert (status, _code(body)) == (401, "UNAUTHORIZED")


async def test_json_rpc_applies_the_same_rules(gateway: RunningGateway, http: aiohttp.ClientSession) -> None:
    calls = [
        {"jsonrpc": "2.0", "id": 1, "method": "t.hello"},
        {"jsonrpc": "2.0", "id": 2, "method": "t.whoami"},
        {"jsonrpc": "2.0", "id": 3, "method": "t.scan", "params": {"text": "x"}},
    ]
    async with http.post(f"{gateway.base_url}/rpc", json=calls, headers=bearer_headers("bob")) as response:
        answers = {answer["id"]: answer for answer in await response.json()}
    assert answers[1]["result"] == "hello"
    assert answers[2]["result"] == {"user": "bob", "roles": []}
    assert answers[3]["error"]["data"]["code"] == "FORBIDDEN"
    async with http.post(f"{gateway.base_url}/rpc", json=calls[1]) as response:
        assert (await response.json())["error"]["data"]["code"] == "UNAUTHORIZED"


# -- rate limits ---------------------------------------------------------------------------------------------------


async def test_mutations_are_limited_per_user_with_retry_after(http: aiohttp.ClientSession) -> None:
    settings = _settings(gateway_rate_limit_user=3, gateway_rate_limit_client=0)
    async with running_gateway(settings, guard_router()) as gateway:
        alice, bob = bearer_headers("alice"), bearer_headers("bob")
        for _ in range(3):
            status, _, _ = await _trpc(http, gateway, "t.write", {"text": "x"}, mutation=True, headers=alice)
            assert status == 200
        status, body, headers = await _trpc(
            http, gateway, "t.write", {"text": "x"}, mutation=True, headers=alice
        )
        assert (status, _code(body)) == (429, "TOO_MANY_REQUESTS")
        # 3 per minute: the next call is allowed in 20 s (a little less, as time went by).
        assert 1 <= int(headers["retry-after"]) <= 20
        # Another user is not held back by alice; queries are never limited.
        status, _, _ = await _trpc(http, gateway, "t.write", {"text": "x"}, mutation=True, headers=bob)
        assert status == 200
        status, _, _ = await _trpc(http, gateway, "t.whoami", headers=alice)
        assert status == 200


async def test_mutations_are_limited_per_client_address_in_a_batch_too(http: aiohttp.ClientSession) -> None:
    settings = _settings(gateway_rate_limit_user=0, gateway_rate_limit_client=2)
    async with running_gateway(settings, guard_router()) as gateway:
        url = f"{gateway.trpc_url}/t.write,t.write,t.write?batch=1"
        body = {str(i): {"text": str(i)} for i in range(3)}
        async with http.post(url, json=body, headers=bearer_headers("carol")) as response:
            answers = await response.json()
            assert response.status == 207
            assert int(response.headers["retry-after"]) >= 1
        assert [answer.get("result", {}).get("data") for answer in answers[:2]] == ["0", "1"]
        assert answers[2]["error"]["data"]["code"] == "TOO_MANY_REQUESTS"
        rpc = {"jsonrpc": "2.0", "id": 1, "method": "t.write", "params": {"text": "y"}}
        async with http.post(f"{gateway.base_url}/rpc", json=rpc, headers=bearer_headers("dave")) as response:
            answer = await response.json()
        assert answer["error"]["data"]["code"] == "TOO_MANY_REQUESTS"
        assert answer["error"]["code"] == -32029


def test_the_bucket_refills_at_the_configured_rate() -> None:
    now = [1000.0]
    limiter = RateLimiter(6, clock=lambda: now[0])  # one call every 10 s, bursts of 6
    assert [limiter.take("k") for _ in range(6)] == [None] * 6
    wait = limiter.take("k")
    assert wait is not None
    assert 9.9 < wait <= 10.0
    now[0] += 10.0
    assert limiter.take("k") is None
    assert limiter.take("k") is not None
    assert limiter.take("other") is None
    assert RateLimiter(0).take("k") is None  # 0: no limit
    many = RateLimiter(1, clock=lambda: now[0])
    for index in range(MAX_KEYS + 10):  # more callers than it keeps: memory stays bounded
        many.take(f"key-{index}")
    assert len(many) <= MAX_KEYS
    assert many.take(f"key-{MAX_KEYS + 9}") is not None  # the newest callers are still remembered


def test_ipv6_clients_are_limited_by_their_64_network() -> None:
    assert (
        client_key("2001:db8:1:2:aaaa::1")
        == client_key("2001:db8:1:2:bbbb:cccc:dddd:eeee")
        == "2001:db8:1:2::"
    )
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("203.0.113.7") == "203.0.113.7"
    assert client_key("not an address:") == "not an address:"


def test_a_call_refused_by_one_limit_does_not_spend_the_other() -> None:
    limits = RateLimits(_settings(gateway_rate_limit_user=1, gateway_rate_limit_client=1))

    def ctx(user: str) -> CallContext:
        return CallContext(request_id="r", settings=_settings(), caller=Caller(user), client="203.0.113.7")

    limits.check(ctx("alice"))
    with pytest.raises(TRPCError) as refused:
        limits.check(ctx("bob"))  # the client's one call a minute is spent
    assert refused.value.code is ErrorCode.TOO_MANY_REQUESTS
    assert limits.per_user.wait("bob") is None  # bob's own allowance is untouched
