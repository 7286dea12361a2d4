"""The tRPC HTTP wire protocol of @trpc/server v11.25, checked byte for byte over a real socket.

Each test names the conformance case of shared/reference/trpc-wire.md section 10 it checks ("case N"); other
tests name the section. Covered here:

- cases 1-9 (queries: input encodings, nested and percent-encoded paths, `{"result":{}}`), 10-13 (mutations and
  their bodies), 14-15 (content types), 16-19 (methods, `allow`, the method override), 20 (HEAD), 21-26 (errors),
  27 (all 21 codes), 28 (production vs development), 29-43 (batches, statuses, whole-request errors), 55 (the
  `connectionParams` query parameter, on a plain query), 56-58 (superjson);
- also: OPTIONS/DELETE/PUT, the `allow` value with the method override on, PAYLOAD_TOO_LARGE, GET URLs over
  8 KB, lazy input parsing, validation details (`data.issues`, `data.zodError`), `x-request-id`, and superjson
  auto-detection and forcing.

Streaming (cases 44-47, 49, 51, 59) is in test_trpc_wire_stream.py. Subscriptions, async generators and
WebSockets (cases 48, 50, 52-54, 60) are not built yet and not tested.

Requests go out exactly as written (`yarl.URL(url, encoded=True)`). Every JSON response is checked for
`content-type: application/json` and `vary: trpc-accept, accept` (`json_body`), then its body is parsed and
compared as a whole with what the reference gives.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import quote

import aiohttp
import msgspec
import pytest
import yarl
from multidict import CIMultiDictProxy

from gateway.auth.access import PUBLIC
from gateway.context import CallContext
from gateway.registry import Router
from gateway.settings import Settings
from tests.support.fixture_router import fixture_router
from tests.support.server import RunningGateway, running_gateway

# -- the reference's tables --------------------------------------------------------------------------------------

CODES: Final[dict[str, tuple[int, int]]] = {
    # data.code: (error.code, HTTP status), table 4.2
    "PARSE_ERROR": (-32700, 400),
    "BAD_REQUEST": (-32600, 400),
    "INTERNAL_SERVER_ERROR": (-32603, 500),
    "NOT_IMPLEMENTED": (-32603, 501),
    "BAD_GATEWAY": (-32603, 502),
    "SERVICE_UNAVAILABLE": (-32603, 503),
    "GATEWAY_TIMEOUT": (-32603, 504),
    "UNAUTHORIZED": (-32001, 401),
    "PAYMENT_REQUIRED": (-32002, 402),
    "FORBIDDEN": (-32003, 403),
    "NOT_FOUND": (-32004, 404),
    "METHOD_NOT_SUPPORTED": (-32005, 405),
    "TIMEOUT": (-32008, 408),
    "CONFLICT": (-32009, 409),
    "PRECONDITION_FAILED": (-32012, 412),
    "PAYLOAD_TOO_LARGE": (-32013, 413),
    "UNSUPPORTED_MEDIA_TYPE": (-32015, 415),
    "UNPROCESSABLE_CONTENT": (-32022, 422),
    "PRECONDITION_REQUIRED": (-32028, 428),
    "TOO_MANY_REQUESTS": (-32029, 429),
    "CLIENT_CLOSED_REQUEST": (-32099, 499),
}

JSON_CT: Final = {"content-type": "application/json"}
PRODUCTION: Final = Settings(
    node_env="production", stripe_secret_key="sk_live_x", stripe_publishable_key="pk_live_x"
)
OVERRIDE: Final = Settings(gateway_trpc_allow_method_override=True)
REQUEST_ID: Final = re.compile(r"^pay_\d{13}_[0-9a-z]{9}$")

SJ_UNDEFINED: Final = {"json": None, "meta": {"values": ["undefined"], "v": 1}}
"""superjson's `undefined`: what a superjson client sends for a procedure without input (1.3)."""
EPOCH: Final = "1970-01-01T00:00:00.000Z"
NEXT_DAY: Final = "1970-01-02T00:00:00.000Z"


# -- helpers -----------------------------------------------------------------------------------------------------


def q(value: object) -> str:
    """`encodeURIComponent(JSON.stringify(value))`, as the client writes `?input=` (1.3)."""
    return quote(json.dumps(value, separators=(",", ":"), ensure_ascii=False), safe="!~*'()")


def ok(data: object) -> dict[str, Any]:
    return {"result": {"data": data}}


def echoed(received: object = None, *, undefined: bool = False) -> dict[str, Any]:
    """What `echo` / `echoMut` answer: the input they got, and whether it was `undefined`."""
    return ok({"received": received, "wasUndefined": undefined})


def error(code: str, message: str, path: str | None = None) -> dict[str, Any]:
    """Err(code) of section 10. `path` None: an error of the whole request, whose `data` has no `path` (3.4)."""
    jsonrpc, status = CODES[code]
    data: dict[str, Any] = {"code": code, "httpStatus": status}
    if path is not None:
        data["path"] = path
    return {"error": {"message": message, "code": jsonrpc, "data": data}}


def sj(envelope: dict[str, Any]) -> dict[str, Any]:
    """The same envelope through superjson with no annotations: `result.data` or the whole `error` is wrapped (7.1)."""
    if "error" in envelope:
        return {"error": {"json": envelope["error"]}}
    return {"result": {"data": {"json": envelope["result"]["data"]}}}


def assert_error(envelope: Any, code: str, *, path: str | None, message: str | None = None) -> dict[str, Any]:
    """An error envelope of `code` whose message is a non-empty string (equal to `message` when given).

    For errors whose message is the server's own wording (JSON parser, validator). Returns the `error` object.
    """
    assert isinstance(envelope, dict)
    assert set(envelope) == {"error"}
    shape: dict[str, Any] = envelope["error"]
    jsonrpc, status = CODES[code]
    assert shape["code"] == jsonrpc
    assert isinstance(shape["message"], str)
    assert shape["message"]
    if message is not None:
        assert shape["message"] == message
    assert shape["data"]["code"] == code
    assert shape["data"]["httpStatus"] == status
    if path is None:
        assert "path" not in shape["data"]
    else:
        assert shape["data"]["path"] == path
    return shape


def pop_stack(envelope: dict[str, Any]) -> dict[str, Any]:
    """Remove a development-mode `data.stack` (a string) from an error envelope, to compare the rest."""
    data = envelope["error"]["data"]
    assert isinstance(data.pop("stack"), str)
    return envelope


def contains_key(value: object, key: str) -> bool:
    if isinstance(value, dict):
        return key in value or any(contains_key(item, key) for item in value.values())
    if isinstance(value, list):
        return any(contains_key(item, key) for item in value)
    return False


@dataclass(frozen=True)
class Reply:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes


async def send(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: bytes | AsyncIterable[bytes] | None = None,
) -> Reply:
    """One request, URL and headers exactly as given (aiohttp adds no content-type of its own)."""
    async with http.request(
        method,
        yarl.URL(url, encoded=True),
        headers=dict(headers or {}),
        data=body,
        skip_auto_headers=("Content-Type",),
    ) as response:
        return Reply(response.status, response.headers, await response.read())


def json_body(reply: Reply, status: int) -> Any:
    """Check the status and the headers of a JSON response (8.2), and return its parsed body."""
    assert reply.status == status, reply.body
    assert reply.headers.get("content-type") == "application/json"
    assert reply.headers.get("vary") == "trpc-accept, accept"
    return json.loads(reply.body)


async def get(http: aiohttp.ClientSession, gateway: RunningGateway, tail: str, **kwargs: Any) -> Reply:
    return await send(http, "GET", gateway.trpc_url + tail, **kwargs)


async def post(
    http: aiohttp.ClientSession, gateway: RunningGateway, tail: str, body: bytes, **kwargs: Any
) -> Reply:
    return await send(http, "POST", gateway.trpc_url + tail, headers=JSON_CT, body=body, **kwargs)


# -- queries (cases 1-9) -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tail", "headers", "expected"),
    [
        pytest.param("/greet?input=" + q({"name": "Ann"}), {}, ok({"hello": "Ann"}), id="case1-input"),
        pytest.param("/greet", {}, ok({"hello": "world"}), id="case2-no-input"),
        pytest.param("/echo", {}, echoed(undefined=True), id="case2-no-input-is-undefined"),
        pytest.param("/greet?input=", {}, ok({"hello": "world"}), id="case3-empty-input"),
        pytest.param("/echo?input=", {}, echoed(undefined=True), id="case3-empty-input-is-undefined"),
        pytest.param("/echo?input=null", {}, echoed(None), id="case4-null-input"),
        pytest.param("/nested.deep.hi", {}, ok("hi"), id="case5-nested-path"),
        pytest.param("/nested%2Edeep%2Ehi", {}, ok("hi"), id="case6-percent-encoded-path"),
        pytest.param("/retUndefined", {}, {"result": {}}, id="case7-undefined-output"),
        pytest.param(
            "/greet?foo=bar&input=" + q({"name": "Ann"}), {}, ok({"hello": "Ann"}), id="case8-other-params"
        ),
        pytest.param("/greet", JSON_CT, ok({"hello": "world"}), id="case9-v10-get-with-content-type"),
        pytest.param(
            "/greet", {"content-type": "text/plain"}, ok({"hello": "world"}), id="get-any-content-type"
        ),
        pytest.param(
            "/echo?input=" + q({"s": "a b&c=d/é,?"}),
            {},
            echoed({"s": "a b&c=d/é,?"}),
            id="special-characters",
        ),
        pytest.param("/echo?input=%22a+b%22", {}, echoed("a b"), id="plus-is-a-space"),
        pytest.param("/greet/", {}, ok({"hello": "world"}), id="trailing-slash"),
    ],
)
async def test_query(
    gateway: RunningGateway,
    http: aiohttp.ClientSession,
    tail: str,
    headers: dict[str, str],
    expected: dict[str, Any],
) -> None:
    reply = await get(http, gateway, tail, headers=headers)

    assert json_body(reply, 200) == expected


# -- mutations (cases 10-13) -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tail", "content_type", "body", "expected"),
    [
        pytest.param("/add", "application/json", b'{"a":1,"b":2}', ok(3), id="case10"),
        pytest.param(
            "/echoMut", "application/json", b"", echoed(undefined=True), id="case11-empty-body-is-undefined"
        ),
        pytest.param("/echoMut", "application/json", b"null", echoed(None), id="case12-null-body"),
        pytest.param(
            "/add", "Application/JSON; charset=utf-8", b'{"a":1,"b":2}', ok(3), id="case13-media-type-rules"
        ),
    ],
)
async def test_mutation(
    gateway: RunningGateway,
    http: aiohttp.ClientSession,
    tail: str,
    content_type: str,
    body: bytes,
    expected: dict[str, Any],
) -> None:
    reply = await send(
        http, "POST", gateway.trpc_url + tail, headers={"content-type": content_type}, body=body
    )

    assert json_body(reply, 200) == expected


# -- content types and methods (cases 14-20) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "tail", "headers", "message"),
    [
        pytest.param("POST", "/add", {}, "Missing content-type header", id="case14-post-without"),
        pytest.param(
            "POST",
            "/add",
            {"content-type": "text/plain"},
            'Unsupported content-type "text/plain',  # the closing quote really is missing (4.3)
            id="case15-post-text-plain",
        ),
        pytest.param("OPTIONS", "/greet", {}, "Missing content-type header", id="options"),
        pytest.param("DELETE", "/greet", {}, "Missing content-type header", id="delete"),
    ],
)
async def test_unsupported_content_type_is_a_415_for_the_whole_request(
    gateway: RunningGateway,
    http: aiohttp.ClientSession,
    method: str,
    tail: str,
    headers: dict[str, str],
    message: str,
) -> None:
    body = b'{"a":1,"b":2}' if method == "POST" else None

    reply = await send(http, method, gateway.trpc_url + tail, headers=headers, body=body)

    assert json_body(reply, 415) == error("UNSUPPORTED_MEDIA_TYPE", message)


@pytest.mark.parametrize(
    ("settings", "method", "tail", "allow", "message", "path"),
    [
        pytest.param(
            Settings(),
            "GET",
            "/add?input=" + q({"a": 1, "b": 2}),
            "POST",
            'Unsupported GET-request to mutation procedure at path "add"',
            "add",
            id="case16-get-mutation",
        ),
        pytest.param(
            Settings(),
            "POST",
            "/greet",
            "GET",
            'Unsupported POST-request to query procedure at path "greet"',
            "greet",
            id="case17-post-query",
        ),
        pytest.param(
            Settings(),
            "PUT",
            "/greet",
            "GET",
            'Unsupported PUT-request to query procedure at path "greet"',
            "greet",
            id="put-query",
        ),
        pytest.param(
            Settings(),
            "PUT",
            "/add",
            "POST",
            'Unsupported PUT-request to mutation procedure at path "add"',
            "add",
            id="put-mutation",
        ),
        pytest.param(
            OVERRIDE,
            "PUT",
            "/greet",
            "GET, POST",
            'Unsupported PUT-request to query procedure at path "greet"',
            "greet",
            id="override-put-query",
        ),
        pytest.param(
            OVERRIDE,
            "GET",
            "/add?input=" + q({"a": 1, "b": 2}),
            "POST",  # the override never lets GET run a mutation
            'Unsupported GET-request to mutation procedure at path "add"',
            "add",
            id="override-get-mutation",
        ),
    ],
)
async def test_wrong_method_is_a_405_with_allow(
    http: aiohttp.ClientSession,
    settings: Settings,
    method: str,
    tail: str,
    allow: str,
    message: str,
    path: str,
) -> None:
    body = b'{"name":"Bo"}' if method != "GET" else None
    headers = JSON_CT if method != "GET" else {}
    async with running_gateway(settings, fixture_router()) as gateway:
        reply = await send(http, method, gateway.trpc_url + tail, headers=headers, body=body)

    assert json_body(reply, 405) == error("METHOD_NOT_SUPPORTED", message, path)
    assert reply.headers.get("allow") == allow


@pytest.mark.parametrize(
    ("tail", "body", "expected"),
    [
        pytest.param("/greet", b'{"name":"Bo"}', ok({"hello": "Bo"}), id="case18"),
        pytest.param("/noInput", b"", ok("pong"), id="no-body"),
        pytest.param(
            "/greet,noInput?batch=1",
            b'{"0":{"name":"o"}}',
            [ok({"hello": "o"}), ok("pong")],
            id="case19-batch",
        ),
        pytest.param("/add", b'{"a":1,"b":2}', ok(3), id="mutation-unchanged"),
    ],
)
async def test_method_override_accepts_post_queries(
    http: aiohttp.ClientSession, tail: str, body: bytes, expected: object
) -> None:
    async with running_gateway(OVERRIDE, fixture_router()) as gateway:
        reply = await post(http, gateway, tail, body)

    assert json_body(reply, 200) == expected


@pytest.mark.parametrize("tail", ["/anything", "/greet", "/add"])
async def test_case20_head_is_an_empty_204(
    gateway: RunningGateway, http: aiohttp.ClientSession, tail: str
) -> None:
    reply = await send(http, "HEAD", gateway.trpc_url + tail)

    assert reply.status == 204
    assert reply.body == b""
    assert "vary" not in reply.headers  # no tRPC headers (2)
    assert "content-type" not in reply.headers


# -- errors (cases 21-28) ----------------------------------------------------------------------------------------


async def test_case21_unknown_path(gateway: RunningGateway, http: aiohttp.ClientSession) -> None:
    reply = await get(http, gateway, "/nope")

    assert json_body(reply, 404) == error("NOT_FOUND", 'No procedure found on path "nope"', "nope")


@pytest.mark.parametrize("url_tail", ["/", ""])
async def test_case22_empty_path(gateway: RunningGateway, http: aiohttp.ClientSession, url_tail: str) -> None:
    reply = await get(http, gateway, url_tail)

    assert json_body(reply, 404) == error("NOT_FOUND", 'No procedure found on path ""', "")


async def test_case23_malformed_path_escape(gateway: RunningGateway, http: aiohttp.ClientSession) -> None:
    reply = await get(http, gateway, "/no%ZZ")

    assert json_body(reply, 400) == error("BAD_REQUEST", 'Invalid URL-encoding in path "no%ZZ"')


@pytest.mark.parametrize(
    ("method", "tail", "body", "status", "path"),
    [
        pytest.param("GET", "/greet?input=%7Bbad", None, 400, "greet", id="case24-query"),
        pytest.param("POST", "/add", b"{bad", 400, "add", id="body"),
        pytest.param("GET", "/greet,noInput?batch=1&input=%7Bbad", None, 207, "greet", id="batch"),
    ],
)
async def test_case24_malformed_json_input_is_bad_request_not_parse_error(
    gateway: RunningGateway,
    http: aiohttp.ClientSession,
    method: str,
    tail: str,
    body: bytes | None,
    status: int,
    path: str,
) -> None:
    # The message is the JSON parser's own (V8's wording from @trpc/server), so only its presence is checked.
    headers = JSON_CT if body is not None else {}
    reply = await send(http, method, gateway.trpc_url + tail, headers=headers, body=body)

    parsed = json_body(reply, status)
    envelope = parsed[0] if isinstance(parsed, list) else parsed
    assert_error(envelope, "BAD_REQUEST", path=path)
    if isinstance(parsed, list):
        assert parsed[1] == ok("pong")  # input is parsed lazily: noInput never looks at it (1.5)


async def test_case25_validation_error(gateway: RunningGateway, http: aiohttp.ClientSession) -> None:
    reply = await post(http, gateway, "/add", b'{"a":"x"}')

    shape = assert_error(json_body(reply, 400), "BAD_REQUEST", path="add")
    issues = shape["data"]["issues"]
    assert [(issue["code"], issue["path"]) for issue in issues] == [
        ("invalid_type", ["a"]),
        ("invalid_type", ["b"]),
    ]
    assert all(isinstance(issue["message"], str) and issue["message"] for issue in issues)
    assert issues[1]["message"] == "Required"
    # zod 3: the message is the issues as pretty-printed JSON (4.3)
    assert json.loads(shape["message"]) == issues
    assert shape["message"].startswith("[\n  {\n")
    # the create-t3-app formatter's `zodError`, ZodError.flatten() (4.4)
    assert shape["data"]["zodError"] == {
        "formErrors": [],
        "fieldErrors": {"a": [issues[0]["message"]], "b": ["Required"]},
    }


class Customer(msgspec.Struct):
    email: str


class Line(msgspec.Struct):
    sku: str
    qty: int


class Order(msgspec.Struct):
    customer: Customer
    lines: list[Line]


def order_router() -> Router:
    root = Router()

    @root.mutation(access=PUBLIC)
    async def order(ctx: CallContext, input: Order) -> int:
        return len(input.lines)

    return root


async def test_validation_issues_carry_full_field_paths(http: aiohttp.ClientSession) -> None:
    body = b'{"customer":{},"lines":[{"sku":"a","qty":1},{"sku":"b","qty":"x"},{"qty":2}]}'
    async with running_gateway(Settings(), order_router()) as gateway:
        reply = await post(http, gateway, "/order", body)

    shape = assert_error(json_body(reply, 400), "BAD_REQUEST", path="order")
    issues = shape["data"]["issues"]
    assert [(issue["code"], issue["path"]) for issue in issues] == [
        ("invalid_type", ["customer", "email"]),
        ("invalid_type", ["lines", 1, "qty"]),
        ("invalid_type", ["lines", 2, "sku"]),
    ]
    assert json.loads(shape["message"]) == issues
    assert shape["data"]["zodError"] == {
        "formErrors": [],
        "fieldErrors": {"customer": ["Required"], "lines": [issues[1]["message"], "Required"]},
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [pytest.param(b"5", None, id="not-an-object"), pytest.param(b"", "Required", id="undefined")],
)
async def test_validation_of_the_whole_input_is_a_form_error(
    gateway: RunningGateway, http: aiohttp.ClientSession, body: bytes, message: str | None
) -> None:
    reply = await post(http, gateway, "/add", body)

    shape = assert_error(json_body(reply, 400), "BAD_REQUEST", path="add")
    [issue] = shape["data"]["issues"]
    assert issue["path"] == []
    if message is not None:
        assert issue["message"] == message
    assert shape["data"]["zodError"] == {"formErrors": [issue["message"]], "fieldErrors": {}}


async def test_case26_unexpected_exception(gateway: RunningGateway, http: aiohttp.ClientSession) -> None:
    reply = await get(http, gateway, "/boom")

    assert pop_stack(json_body(reply, 500)) == error("INTERNAL_SERVER_ERROR", "kaboom", "boom")


async def test_a_plain_procedure_fails_like_an_async_one(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    """Plain (non-async) procedures run inline; their errors are answered exactly as async ones'."""
    unexpected = await get(http, gateway, "/boomPlain")
    assert pop_stack(json_body(unexpected, 500)) == error(
        "INTERNAL_SERVER_ERROR", "plain kaboom", "boomPlain"
    )

    thrown = await get(http, gateway, "/throwCodePlain?input=" + q("CONFLICT"))
    assert json_body(thrown, 409) == error("CONFLICT", "thrown plainly CONFLICT", "throwCodePlain")


async def test_a_batch_mixing_plain_and_async_procedures_keeps_every_result_at_its_index(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    paths = "slow,greet,boomPlain,slow,throwCodePlain,noInput"
    batch_input = {"0": {"ms": 30}, "1": {"name": "A"}, "3": {"ms": 1}, "4": "FORBIDDEN"}

    reply = await get(http, gateway, f"/{paths}?batch=1&input=" + q(batch_input))

    body = json_body(reply, 207)
    assert body[0] == ok({"waited": 30})
    assert body[1] == ok({"hello": "A"})
    assert pop_stack(body[2]) == error("INTERNAL_SERVER_ERROR", "plain kaboom", "boomPlain")
    assert body[3] == ok({"waited": 1})
    assert body[4] == error("FORBIDDEN", "thrown plainly FORBIDDEN", "throwCodePlain")
    assert body[5] == ok("pong")


@pytest.mark.parametrize("code", list(CODES))
async def test_case27_every_code(gateway: RunningGateway, http: aiohttp.ClientSession, code: str) -> None:
    reply = await get(http, gateway, "/throwCode?input=" + q(code))

    assert json_body(reply, CODES[code][1]) == error(code, f"thrown {code}", "throwCode")


PRODUCTION_ERRORS: Final = [
    pytest.param("GET", "/boom", None, id="exception"),
    pytest.param("GET", "/throwCode?input=" + q("FORBIDDEN"), None, id="trpc-error"),
    pytest.param("GET", "/nope", None, id="not-found"),
    pytest.param("POST", "/add", b'{"a":"x"}', id="validation"),
    pytest.param("GET", "/greet?input=%7Bbad", None, id="bad-json"),
    pytest.param("GET", "/noInput,add?batch=1", None, id="whole-request"),
    pytest.param("GET", "/boom,greet,boom?batch=1&input=%7B%7D", None, id="batch"),
    pytest.param("GET", "/add?input=%7B%7D", None, id="method"),
]


@pytest.mark.parametrize(("method", "tail", "body"), PRODUCTION_ERRORS)
async def test_case28_production_never_sends_a_stack(
    http: aiohttp.ClientSession, method: str, tail: str, body: bytes | None
) -> None:
    async with running_gateway(PRODUCTION, fixture_router()) as gateway:
        reply = await send(http, method, gateway.trpc_url + tail, headers=JSON_CT if body else {}, body=body)

    assert reply.status >= 207
    parsed = json.loads(reply.body)
    assert contains_key(parsed, "error")
    assert not contains_key(parsed, "stack")


async def test_case28_production_hides_unexpected_exception_messages(http: aiohttp.ClientSession) -> None:
    async with running_gateway(PRODUCTION, fixture_router()) as gateway:
        boom = await get(http, gateway, "/boom")
        thrown = await get(http, gateway, "/throwCode?input=" + q("CONFLICT"))

    assert json_body(boom, 500) == error("INTERNAL_SERVER_ERROR", "Internal server error", "boom")
    # errors raised on purpose are meant for the client and keep their message
    assert json_body(thrown, 409) == error("CONFLICT", "thrown CONFLICT", "throwCode")


async def test_case28_development_sends_the_stack(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    reply = await get(http, gateway, "/boom")

    shape = assert_error(json_body(reply, 500), "INTERNAL_SERVER_ERROR", path="boom", message="kaboom")
    stack = shape["data"]["stack"]
    assert isinstance(stack, str)
    assert "kaboom" in stack
    assert "\n" in stack  # one string, lines separated by \n (4.1)


# -- batches (cases 29-43) ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "tail", "body", "expected"),
    [
        pytest.param(
            "GET",
            "/greet,noInput,greet?batch=1&input=" + q({"0": {"name": "A"}}),
            None,
            [ok({"hello": "A"}), ok("pong"), ok({"hello": "world"})],
            id="case29-in-order-missing-keys-undefined",
        ),
        pytest.param(
            "GET",
            "/noInput,noInput?batch=1&input=%7B%7D",
            None,
            [ok("pong"), ok("pong")],
            id="case30-empty-dict",
        ),
        pytest.param("GET", "/noInput?batch=1", None, [ok("pong")], id="case31-no-input-parameter"),
        pytest.param(
            "POST",
            "/echoMut,echoMut,echoMut?batch=1",
            b'{"0":1,"2":3}',
            [echoed(1), echoed(undefined=True), echoed(3)],
            id="case35-middle-undefined",
        ),
        pytest.param(
            "POST",
            "/echoMut,echoMut?batch=1",
            b"{}",
            [echoed(undefined=True), echoed(undefined=True)],
            id="case36-all-undefined",
        ),
        pytest.param(
            "GET", "/noInput%2CnoInput?batch=1", None, [ok("pong"), ok("pong")], id="case37-encoded-comma"
        ),
        pytest.param("POST", "/echoMut?batch=1", b'{"0":1,"5":2}', [echoed(1)], id="extra-keys-ignored"),
        pytest.param(
            "GET",
            "/echo,echo?batch=1&input=" + q({"0": None, "1": {"s": "x"}}),
            None,
            [echoed(None), echoed({"s": "x"})],
            id="null-and-object",
        ),
    ],
)
async def test_batch(
    gateway: RunningGateway,
    http: aiohttp.ClientSession,
    method: str,
    tail: str,
    body: bytes | None,
    expected: list[Any],
) -> None:
    reply = await send(
        http, method, gateway.trpc_url + tail, headers=JSON_CT if body is not None else {}, body=body
    )

    assert json_body(reply, 200) == expected


@pytest.mark.parametrize(
    ("tail", "status", "codes"),
    [
        pytest.param("/greet,noInput?batch=1&input=%7B%7D", 200, [None, None], id="ok-ok"),
        pytest.param("/greet,boom?batch=1&input=%7B%7D", 207, [None, "INTERNAL_SERVER_ERROR"], id="case32"),
        pytest.param(
            "/boom,boom?batch=1&input=%7B%7D",
            500,
            ["INTERNAL_SERVER_ERROR", "INTERNAL_SERVER_ERROR"],
            id="case33-same-errors",
        ),
        pytest.param(
            "/noInput,nope?batch=1&input=%7B%7D", 207, [None, "NOT_FOUND"], id="case34-unknown-path"
        ),
        pytest.param("/nope,nope?batch=1&input=%7B%7D", 404, ["NOT_FOUND", "NOT_FOUND"], id="all-unknown"),
        pytest.param(
            "/throwCode,throwCode?batch=1&input=" + q({"0": "UNAUTHORIZED", "1": "FORBIDDEN"}),
            207,
            ["UNAUTHORIZED", "FORBIDDEN"],
            id="different-errors",
        ),
        pytest.param(
            "/throwCode,throwCode?batch=1&input=" + q({"0": "FORBIDDEN", "1": "FORBIDDEN"}),
            403,
            ["FORBIDDEN", "FORBIDDEN"],
            id="same-errors",
        ),
        pytest.param(
            "/slow?batch=1&input=" + q({"0": {"ms": "x"}}), 400, ["BAD_REQUEST"], id="invalid-input"
        ),
    ],
)
async def test_batch_status(
    gateway: RunningGateway, http: aiohttp.ClientSession, tail: str, status: int, codes: list[str | None]
) -> None:
    """Table 3.3: the shared status when every call agrees, 207 otherwise; each envelope at its index."""
    reply = await get(http, gateway, tail)

    body = json_body(reply, status)
    paths = tail[1 : tail.index("?")].split(",")
    assert len(body) == len(codes)
    for envelope, code, path in zip(body, codes, paths, strict=True):
        if code is None:
            assert set(envelope) == {"result"}
        else:
            assert_error(envelope, code, path=path)


async def test_case32_batch_with_an_error_keeps_the_successes(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    reply = await get(http, gateway, "/greet,boom?batch=1&input=" + q({"0": {"name": "A"}}))

    first, second = json_body(reply, 207)
    assert first == ok({"hello": "A"})
    assert pop_stack(second) == error("INTERNAL_SERVER_ERROR", "kaboom", "boom")


@pytest.mark.parametrize(
    ("paths", "batch_input"),
    [
        pytest.param("greet", "5", id="case38-number"),
        pytest.param("greet,greet", q([{"name": "x"}, {}]), id="case39-array"),
        pytest.param("greet", "null", id="null"),
    ],
)
async def test_batch_input_must_be_an_object(
    gateway: RunningGateway, http: aiohttp.ClientSession, paths: str, batch_input: str
) -> None:
    reply = await get(http, gateway, f"/{paths}?batch=1&input={batch_input}")

    message = '"input" needs to be an object when doing a batch call'
    assert json_body(reply, 400) == [error("BAD_REQUEST", message, path) for path in paths.split(",")]


@pytest.mark.parametrize(
    ("method", "tail", "body", "expected"),
    [
        pytest.param("GET", "/noInput?input=%7Bbad", None, ok("pong"), id="query-ignores-bad-input"),
        pytest.param(
            "GET",
            "/noInput,noInput?batch=1&input=5",
            None,
            [ok("pong"), ok("pong")],
            id="batch-ignores-bad-input",
        ),
        pytest.param(
            "POST",
            "/nope",
            b"{bad",
            error("NOT_FOUND", 'No procedure found on path "nope"', "nope"),
            id="unknown",
        ),
    ],
)
async def test_input_is_parsed_only_by_procedures_that_take_it(
    gateway: RunningGateway,
    http: aiohttp.ClientSession,
    method: str,
    tail: str,
    body: bytes | None,
    expected: Any,
) -> None:
    """1.5: input is parsed lazily, per procedure."""
    reply = await send(http, method, gateway.trpc_url + tail, headers=JSON_CT if body else {}, body=body)

    assert json_body(reply, 404 if "nope" in tail else 200) == expected


async def test_case40_mixed_types_fail_the_whole_request(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    reply = await get(http, gateway, "/noInput,add?batch=1")

    assert json_body(reply, 400) == error(
        "BAD_REQUEST", "Cannot mix procedure types in call: query, mutation"
    )


async def test_case41_batch_must_be_exactly_1(gateway: RunningGateway, http: aiohttp.ClientSession) -> None:
    reply = await get(http, gateway, "/noInput?batch=true")

    assert json_body(reply, 200) == ok("pong")


async def test_case42_max_batch_size(http: aiohttp.ClientSession) -> None:
    async with running_gateway(Settings(gateway_trpc_max_batch_size=2), fixture_router()) as gateway:
        too_many = await get(http, gateway, "/noInput,noInput,noInput?batch=1&input=%7B%7D")
        enough = await get(http, gateway, "/noInput,noInput?batch=1&input=%7B%7D")

    assert json_body(too_many, 400) == error("BAD_REQUEST", "Batch call exceeds maximum size")
    assert json_body(enough, 200) == [ok("pong"), ok("pong")]


async def test_case43_batching_disabled(http: aiohttp.ClientSession) -> None:
    async with running_gateway(Settings(gateway_trpc_allow_batching=False), fixture_router()) as gateway:
        batch = await get(http, gateway, "/noInput?batch=1&input=%7B%7D")
        single = await get(http, gateway, "/noInput")

    assert json_body(batch, 400) == error("BAD_REQUEST", "Batching is not enabled on the server")
    assert json_body(single, 200) == ok("pong")


# -- limits ------------------------------------------------------------------------------------------------------


async def _oversized_chunks() -> AsyncIterator[bytes]:
    """A 2 KB body sent chunked, without content-length."""
    yield b'{"pad":"'
    for _ in range(20):
        yield b"x" * 100
    yield b'"}'


@pytest.mark.parametrize(
    ("tail", "chunked", "batch"),
    [
        pytest.param("/echoMut", False, False, id="content-length"),
        pytest.param("/echoMut", True, False, id="chunked"),
        pytest.param("/echoMut,echoMut?batch=1", False, True, id="batch"),
    ],
)
async def test_body_over_the_limit_is_payload_too_large(
    http: aiohttp.ClientSession, tail: str, chunked: bool, batch: bool
) -> None:
    oversized = b'{"0":{"pad":"' + b"x" * 2000 + b'"}}' if batch else b'{"pad":"' + b"x" * 2000 + b'"}'
    body: bytes | AsyncIterable[bytes] = _oversized_chunks() if chunked else oversized
    async with running_gateway(Settings(gateway_max_body_bytes=1024), fixture_router()) as gateway:
        small = await post(http, gateway, tail, b"")
        reply = await send(http, "POST", gateway.trpc_url + tail, headers=JSON_CT, body=body)

    assert json_body(small, 200) == ([echoed(undefined=True)] * 2 if batch else echoed(undefined=True))
    expected = error("PAYLOAD_TOO_LARGE", "PAYLOAD_TOO_LARGE", "echoMut")  # message: the code name (4.1)
    assert json_body(reply, 413) == ([expected, expected] if batch else expected)


async def test_get_url_over_8_kb(gateway: RunningGateway, http: aiohttp.ClientSession) -> None:
    text = "x" * 9000
    tail = "/echo?input=" + q({"s": text})
    assert len(gateway.trpc_url + tail) > 9000

    reply = await get(http, gateway, tail)

    assert json_body(reply, 200) == echoed({"s": text})


# -- response headers --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "tail", "headers"),
    [
        pytest.param("GET", "/noInput", {}, id="success"),
        pytest.param("GET", "/nope", {}, id="error"),
        pytest.param("GET", "/no%ZZ", {}, id="whole-request-error"),
        pytest.param("GET", "/noInput?batch=1", {"trpc-accept": "application/jsonl"}, id="stream"),
        pytest.param("HEAD", "/noInput", {}, id="head"),
    ],
)
async def test_every_response_has_a_request_id(
    gateway: RunningGateway, http: aiohttp.ClientSession, method: str, tail: str, headers: dict[str, str]
) -> None:
    first = await send(http, method, gateway.trpc_url + tail, headers=headers)
    second = await send(http, method, gateway.trpc_url + tail, headers=headers)

    assert REQUEST_ID.match(first.headers.get("x-request-id", ""))
    assert REQUEST_ID.match(second.headers.get("x-request-id", ""))
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


# -- connectionParams (case 55, on a plain query) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "status", "expected"),
    [
        pytest.param(
            "?connectionParams=" + q({"token": "abc"}), 200, ok({"token": "abc"}), id="case55-params"
        ),
        pytest.param("", 200, ok(None), id="none"),
        pytest.param(
            "?connectionParams=notjson",
            400,
            error("PARSE_ERROR", "Not JSON-parsable query params"),
            id="case55-not-json",
        ),
        pytest.param(
            "?connectionParams=" + q({"token": 1}),
            400,
            error("PARSE_ERROR", "Invalid connection params shape"),
            id="non-string-value",
        ),
        pytest.param(
            "?connectionParams=" + q(["abc"]),
            400,
            error("PARSE_ERROR", "Invalid connection params shape"),
            id="not-an-object",
        ),
        pytest.param(
            "?connectionParams=null",
            200,
            ok(None),
            id="null-is-no-params",
        ),
        pytest.param(
            "?connectionParams=",
            400,
            error("PARSE_ERROR", "Not JSON-parsable query params"),
            id="empty-is-not-json",
        ),
    ],
)
async def test_case55_connection_params(
    gateway: RunningGateway, http: aiohttp.ClientSession, query: str, status: int, expected: dict[str, Any]
) -> None:
    reply = await get(http, gateway, "/whoami" + query)

    assert json_body(reply, status) == expected


# -- superjson (cases 56-58, section 7) ---------------------------------------------------------------------------

DATE_INPUT: Final = {"json": {"at": EPOCH}, "meta": {"values": {"at": ["Date"]}, "v": 1}}
DATE_INPUT_V1X: Final = {"json": {"at": EPOCH}, "meta": {"values": {"at": ["Date"]}}}  # superjson 1.x: no "v"
DATE_OUTPUT: Final = ok(
    {
        "json": {"at": EPOCH, "nextDay": NEXT_DAY},
        "meta": {"values": {"at": ["Date"], "nextDay": ["Date"]}, "v": 1},
    }
)


@pytest.mark.parametrize(
    ("method", "tail", "body", "status", "expected"),
    [
        pytest.param(
            "GET",
            "/greet?input=" + q({"json": {"name": "Ann"}}),
            None,
            200,
            sj(ok({"hello": "Ann"})),
            id="input",
        ),
        pytest.param("GET", "/noInput?input=" + q(SJ_UNDEFINED), None, 200, sj(ok("pong")), id="case56"),
        pytest.param("GET", "/when?input=" + q(DATE_INPUT), None, 200, DATE_OUTPUT, id="case57-date"),
        pytest.param("GET", "/when?input=" + q(DATE_INPUT_V1X), None, 200, DATE_OUTPUT, id="case57-date-1.x"),
        pytest.param(
            "GET",
            "/retUndefined?input=" + q(SJ_UNDEFINED),
            None,
            200,
            ok(SJ_UNDEFINED),
            id="undefined-output",
        ),
        pytest.param(
            "POST",
            "/echoMut",
            json.dumps(SJ_UNDEFINED).encode(),
            200,
            sj(echoed(undefined=True)),
            id="undefined-mutation-body",
        ),
        pytest.param(
            "GET",
            "/throwCode?input=" + q({"json": "NOT_FOUND"}),
            None,
            404,
            sj(error("NOT_FOUND", "thrown NOT_FOUND", "throwCode")),
            id="case58-error",
        ),
        pytest.param(
            "GET",
            "/nope?input=" + q(SJ_UNDEFINED),
            None,
            404,
            sj(error("NOT_FOUND", 'No procedure found on path "nope"', "nope")),
            id="case58-unknown-path",
        ),
        pytest.param(
            "GET",
            "/noInput,add?batch=1&input=" + q({"0": SJ_UNDEFINED}),
            None,
            400,
            sj(error("BAD_REQUEST", "Cannot mix procedure types in call: query, mutation")),
            id="whole-request-error",
        ),
        pytest.param(
            "GET",
            "/when,noInput?batch=1&input=" + q({"0": DATE_INPUT, "1": SJ_UNDEFINED}),
            None,
            200,
            [DATE_OUTPUT, sj(ok("pong"))],
            id="batch-each-input-on-its-own",
        ),
    ],
)
async def test_superjson_is_detected_from_the_input(
    gateway: RunningGateway,
    http: aiohttp.ClientSession,
    method: str,
    tail: str,
    body: bytes | None,
    status: int,
    expected: Any,
) -> None:
    reply = await send(http, method, gateway.trpc_url + tail, headers=JSON_CT if body else {}, body=body)

    assert json_body(reply, status) == expected


@pytest.mark.parametrize(
    ("mode", "tail", "expected"),
    [
        pytest.param("auto", "/noInput", ok("pong"), id="auto-no-input-is-plain"),
        pytest.param(
            "auto", "/greet?input=" + q({"name": "Ann"}), ok({"hello": "Ann"}), id="auto-plain-input"
        ),
        pytest.param("json", "/noInput?input=" + q(SJ_UNDEFINED), ok("pong"), id="json-forced"),
        pytest.param(
            "json", "/echo?input=" + q(SJ_UNDEFINED), echoed(SJ_UNDEFINED), id="json-forced-no-decoding"
        ),
        pytest.param("superjson", "/noInput", sj(ok("pong")), id="superjson-forced"),
        pytest.param(
            # superjson.deserialize of a value without `json` is undefined (1.5)
            "superjson",
            "/greet?input=" + q({"name": "Ann"}),
            sj(ok({"hello": "world"})),
            id="superjson-forced-plain-input-is-undefined",
        ),
        pytest.param(
            "superjson",
            "/nope",
            sj(error("NOT_FOUND", 'No procedure found on path "nope"', "nope")),
            id="superjson-forced-error",
        ),
    ],
)
async def test_transformer_setting(
    http: aiohttp.ClientSession, mode: Literal["auto", "json", "superjson"], tail: str, expected: Any
) -> None:
    async with running_gateway(Settings(gateway_trpc_transformer=mode), fixture_router()) as gateway:
        reply = await get(http, gateway, tail)

    assert json_body(reply, 404 if "nope" in tail else 200) == expected


# -- details beyond section 10, each checked against a real @trpc/server 11.25.2 ---------------------------------


async def test_a_bad_path_encoding_is_reported_before_the_content_type(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    reply = await send(
        http, "POST", gateway.trpc_url + "/no%ZZ", headers={"content-type": "text/plain"}, body=b"x"
    )
    assert json_body(reply, 400) == error("BAD_REQUEST", 'Invalid URL-encoding in path "no%ZZ"')


async def test_only_the_slash_after_the_prefix_is_dropped(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    reply = await get(http, gateway, "//greet")
    assert json_body(reply, 404) == error("NOT_FOUND", 'No procedure found on path "/greet"', "/greet")


async def test_a_utf8_bom_before_the_body_is_ignored(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    reply = await post(http, gateway, "/add", b'\xef\xbb\xbf{"a":1,"b":2}')
    assert json_body(reply, 200) == ok(3)


async def test_an_empty_content_type_is_unsupported_not_missing(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    reply = await send(http, "POST", gateway.trpc_url + "/add", headers={"content-type": ""}, body=b"{}")
    assert json_body(reply, 415) == error("UNSUPPORTED_MEDIA_TYPE", 'Unsupported content-type "')


async def test_errors_about_the_whole_request_are_transformed_for_superjson_clients(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    reply = await get(
        http, gateway, "/no%ZZ?input=" + q({"json": None, "meta": {"values": ["undefined"], "v": 1}})
    )
    assert json_body(reply, 400) == {
        "error": {"json": error("BAD_REQUEST", 'Invalid URL-encoding in path "no%ZZ"')["error"]}
    }


async def test_a_plain_input_with_a_json_field_stays_plain(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    reply = await get(http, gateway, "/echo?input=" + q({"json": 1, "other": 2}))
    assert json_body(reply, 200) == echoed({"json": 1, "other": 2})


async def test_a_cancellation_caught_by_a_procedure_is_that_calls_error(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    reply = await get(http, gateway, "/awaitsACancelledFuture,noInput?batch=1")
    body = json_body(reply, 207)
    assert body[0]["error"]["data"]["code"] == "INTERNAL_SERVER_ERROR"
    assert body[1] == ok("pong")
    single = await get(http, gateway, "/awaitsACancelledFuture")
    assert json_body(single, 500)["error"]["data"]["path"] == "awaitsACancelledFuture"
