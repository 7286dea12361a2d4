"""Fuzz `POST /rpc` (JSON-RPC 2.0) over real HTTP: no body, header or method gets a 5xx, a hang, or an answer that
is not JSON-RPC.

The gateway serves, on 127.0.0.1, the production `stripe.*` procedures next to the property router of
tests/trpc/test_request_properties.py (queries and mutations that cannot fail on their own, with struct, optional,
constrained and untyped inputs). No payment service is configured: a `stripe.*` payment procedure that is admitted
and given valid params answers INTERNAL_SERVER_ERROR ("service 'payments' is not configured"), the one
INTERNAL_SERVER_ERROR excused below; every other procedure cannot fail, so an INTERNAL_SERVER_ERROR from it is the
gateway's.

Requests: random bytes, UTF-16 and BOM-led bodies, any JSON value, JSON cut short, nesting past msgspec's recursion
limit, and requests and batches shaped like a client's with each member right or wrong (`jsonrpc`, `method`, `id`
of every JSON type, `params` by name, by position, scalars, deep), duplicate keys, bodies over the limit (with and
without a Content-Length), any content type or none, any method, and a valid, refused or no bearer token.

For every request (the properties):
- a complete answer arrives within DEADLINE_S, and its status is below 500;
- the status is what the route's rules give (405 for a method that is not POST, 415 for a content type that is not
  JSON, 413 for a body over the limit, else 200, or 204 when every request in it is a notification), and a 405, 413
  or 415 body is the JSON-RPC error object the route writes (id null, `data.code` METHOD_NOT_SUPPORTED,
  PAYLOAD_TOO_LARGE or UNSUPPORTED_MEDIA_TYPE, `data.httpStatus` the status);
- a 200 body is strict JSON: one response object or a non-empty array of them, each with `jsonrpc: "2.0"`, an `id`
  (string, number or null), exactly one of `result` and `error`, an error with an integer `code`, a string
  `message` and `data` whose tRPC code and HTTP status agree with `code`; a 204 has no body;
- when the body was written from a known value, the answers are exactly the ones JSON-RPC 2.0 prescribes: one per
  request that is not a notification, in order, each with its request's id (null for an invalid one); a body that
  is not JSON (a JSON scalar followed by junk, `1 2`, included) is one -32700 error, a single request whose `id`,
  `jsonrpc` or `method` is a number no float holds (`1e400`) is one -32600 error, and an empty batch, a batch over the size limit or a JSON value that is neither
  an object nor an array is one -32600 error (not an array); an unknown method is -32601, params that are not an
  object (but `[]` for a procedure without input) are -32602, a protected procedure without a valid token is
  UNAUTHORIZED;
- no procedure that cannot fail answers INTERNAL_SERVER_ERROR.

Regressions (the tests at the end pin the minimal cases): a single request whose `id`, `jsonrpc` or `method` is a
number out of range (`{"id":1e400}`) was a 500, and is -32600 Invalid Request; a JSON scalar followed by junk
(`0\x00`, `"x" y`) was answered -32600, and is -32700 Parse error. The main fuzz draws both.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.errors import ErrorCode
from gateway.registry import Registry, Router
from gateway.settings import Settings
from procedures import stripe_config, stripe_payments
from tests.fuzz.strategies import event, one_in, usually
from tests.fuzz.tokens import AUDIENCE, ISSUER, JWT_SECRET, make_token, valid_claims
from tests.support.threaded_gateway import Answer, HttpClient, ThreadedGateway, threaded_gateway
from tests.trpc.test_request_properties import (
    CALL_INPUTS,
    GRAFT,
    GRAFT_JSON,
    OUT_OF_RANGE_NUMBERS,
    Json,
    deep_texts,
    grafted,
    json_values,
    maybe_wrong,
    mostly,
    odd_json_texts,
    property_router,
    raw_fragments,
    texts,
)

MAX_BODY_BYTES: Final = 8192
MAX_BATCH: Final = 6
SETTINGS: Final = Settings(
    gateway_max_body_bytes=MAX_BODY_BYTES,
    gateway_trpc_max_batch_size=MAX_BATCH,
    gateway_rate_limit_user=0,  # no mutation limit: the answers must depend on the request alone
    gateway_rate_limit_client=0,
    jwt_secret=JWT_SECRET,
    gateway_jwt_issuer=ISSUER,
    gateway_jwt_audience=AUDIENCE,
)
ADMIN_TOKEN: Final = make_token(valid_claims("fuzz-admin", ["admin"]))
PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602
PROTOCOL_ERRORS: Final = {
    "Parse error": (PARSE_ERROR, "PARSE_ERROR"),
    "Invalid Request": (INVALID_REQUEST, "BAD_REQUEST"),
    "Method not found": (METHOD_NOT_FOUND, "NOT_FOUND"),
    "Invalid params": (INVALID_PARAMS, "BAD_REQUEST"),
}
MEDIA_TYPES: Final = ("application/json", "application/json-rpc", "application/jsonrequest")


def fuzz_router() -> Router:
    """The property router's procedures at the root, the production ones under `stripe.`."""
    root = property_router()
    stripe = Router()
    stripe_config.register(stripe)
    stripe_payments.register(stripe)
    root.include("stripe", stripe)
    return root


REGISTRY: Final = Registry(fuzz_router())
METHODS: Final = [proc.path for proc in REGISTRY]
NEEDS_PAYMENT_SERVICE: Final = frozenset(
    m for m in METHODS if m.startswith("stripe.") and m != "stripe.getConfig"
)
"""The procedures that answer INTERNAL_SERVER_ERROR here when they run (no payment service is configured)."""


@pytest.fixture(scope="module")
def gateway() -> Iterator[ThreadedGateway]:
    with threaded_gateway(SETTINGS, fuzz_router()) as running:
        yield running


# --- strategies ---------------------------------------------------------------------------------------------------

order_ids = mostly(
    st.sampled_from(["order-1", "o_2"]), st.just("") | texts | st.text(min_size=201, max_size=205)
)
STRIPE_PARAMS: Final[dict[str, st.SearchStrategy[Json]]] = {
    "stripe.createPaymentIntent": st.fixed_dictionaries(
        {
            "orderId": maybe_wrong(order_ids),
            "amount": maybe_wrong(st.integers(-5, 10**9)),
            "currency": maybe_wrong(st.sampled_from(["eur", "usd", "EUR", "xx", ""])),
        },
        optional={
            "customer": maybe_wrong(st.fixed_dictionaries({"email": st.sampled_from(["a@b.co", "nope"])})),
            "metadata": json_values,
        },
    ),
    "stripe.getPaymentStatus": st.fixed_dictionaries(
        {"orderId": maybe_wrong(order_ids)}, optional={"clientSecret": maybe_wrong(texts)}
    ),
    "stripe.cancelPaymentIntent": st.fixed_dictionaries({"orderId": maybe_wrong(order_ids)}),
    "stripe.refund": st.fixed_dictionaries(
        {"orderId": maybe_wrong(order_ids)},
        optional={
            "amount": maybe_wrong(st.integers(-5, 10**6)),
            "reason": maybe_wrong(st.sampled_from(["duplicate", "fraudulent", "nope"])),
            "idempotencyKey": maybe_wrong(st.sampled_from(["k-1", "bad key!", ""])),
        },
    ),
    "stripe.checkNativePayAvailability": st.fixed_dictionaries(
        {"domain": maybe_wrong(st.sampled_from(["shop.example.com", "localhost", "-bad-", ""]))}
    ),
}
BY_NAME: Final = {"lookup", "orders.create"}
"""Procedures of the property router whose struct input is the params object itself (others take `{"input": …}`)."""


def params_for(method: object) -> st.SearchStrategy[Json]:
    """`params` for a call of `method`: usually shaped for it (right or wrong inside), sometimes any JSON at all
    (by-position arrays, scalars, null)."""
    shaped: st.SearchStrategy[Json]
    if isinstance(method, str) and method in STRIPE_PARAMS:
        shaped = STRIPE_PARAMS[method]
    elif isinstance(method, str) and method in CALL_INPUTS:
        value = CALL_INPUTS[method]
        shaped = value if method in BY_NAME else value.map(lambda v: {"input": v})
    else:
        empty: list[Json] = [{}, []]
        shaped = st.sampled_from(empty) | st.dictionaries(texts, json_values, max_size=2)
    return mostly(shaped, json_values | st.sampled_from([[], [1, 2], None, "x", 0]))


rpc_methods = mostly(
    st.sampled_from([*METHODS, "rpc.discover"]),
    st.sampled_from(["nope", "rpc.other", "rpc.", "", "stripe", "Stripe.getConfig"]) | texts | json_values,
)
valid_ids = st.one_of(
    st.none(),
    st.integers(),
    st.integers(-(2**70), 2**70),
    texts,
    st.floats(allow_nan=False, allow_infinity=False),
)
request_ids = mostly(valid_ids, json_values)


@st.composite
def request_objects(draw: st.DrawFn) -> dict[str, Json]:
    """One request object, each member present or not, right or wrong."""
    obj: dict[str, Json] = {}
    if draw(usually(12)):
        right = draw(usually(12))
        obj["jsonrpc"] = draw(
            st.just("2.0") if right else st.sampled_from(["1.0", "2", 2.0, None]) | json_values
        )
    method = draw(rpc_methods)
    if draw(usually(12)):
        obj["method"] = method
    if draw(usually(4)):
        obj["id"] = draw(request_ids)
    if draw(st.booleans()):
        obj["params"] = draw(params_for(method))
    if draw(one_in(8)):
        obj.update(draw(st.dictionaries(texts, json_values, max_size=2)))
    return obj


batches = st.lists(mostly(request_objects(), json_values), min_size=0, max_size=MAX_BATCH + 2)


@dataclass(frozen=True)
class Body:
    data: bytes
    value: Json | None
    """The value the body is the JSON of, when its answers are known (else None, and only their shape is)."""
    kind: str
    code: int | None = None
    """The error code of the one answer the body must get, when known without `value` (else None)."""
    ids: tuple[Json, ...] = (None,)
    """The ids that answer may carry."""


@st.composite
def grafted_bodies(draw: st.DrawFn) -> Body:
    """A request or batch with a raw fragment (deep nesting, a number out of range, a 400-digit integer) in place of
    a node: anywhere (`grafted`), or as one member of a single request, `id`, `jsonrpc` and `method` included."""
    value = draw(request_objects() | batches)
    if not isinstance(value, dict) or draw(one_in(4)):
        return Body(draw(grafted(value)).encode(), None, "grafted")
    return draw(grafted_members(value))


def out_of_range(number: str) -> bool:
    """Whether a JSON number is one no float holds (`1e400`; not `123456789e300`, which is 1.2e308)."""
    try:
        msgspec.json.decode(number)
    except msgspec.DecodeError:
        return True
    return False


@st.composite
def grafted_members(draw: st.DrawFn, value: dict[str, Json]) -> Body:
    """The single request `value` with a raw fragment as one of its members. A number out of range as its `id`,
    `jsonrpc` or `method` makes it an Invalid Request (id null, or the request's id when an earlier member already
    made it one); other fragments leave only the answer's shape known."""
    key = draw(st.sampled_from(sorted({*value, "id", "jsonrpc", "method", "params"})))
    fragment = draw(raw_fragments)
    text = json.dumps({**value, key: GRAFT}).replace(GRAFT_JSON, fragment)
    if key != "params" and fragment in OUT_OF_RANGE_NUMBERS and out_of_range(fragment):
        ids = (None,) if key == "id" or "id" not in value else (None, value["id"])
        return Body(text.encode(), None, "grafted member", code=INVALID_REQUEST, ids=ids)
    return Body(text.encode(), None, "grafted member")


@st.composite
def bodies(draw: st.DrawFn) -> Body:
    kind = draw(
        st.sampled_from(
            ["request"] * 4
            + ["batch"] * 3
            + ["json", "grafted", "odd", "bytes", "utf-16", "bom", "duplicates"]
        )
    )
    if kind in ("request", "batch", "json", "bom"):
        value = draw(
            request_objects() if kind in ("request", "bom") else batches if kind == "batch" else json_values
        )
        text = json.dumps(value)
        data = ("\ufeff" + text if kind == "bom" else text).encode()
        return Body(data, value, kind)
    if kind == "grafted":
        return draw(grafted_bodies())
    if kind == "odd":
        return Body(draw(odd_json_texts | deep_texts).encode(), None, kind)
    if kind == "bytes":
        return Body(draw(st.binary(max_size=64)), None, kind)
    if kind == "utf-16":
        return Body(json.dumps(draw(request_objects())).encode("utf-16"), None, kind)
    # Duplicate keys: the same member twice, with different values (which one counts is not JSON's to say).
    obj = draw(request_objects())
    key = draw(st.sampled_from(["jsonrpc", "method", "id", "params"]))
    first = json.dumps({key: draw(json_values)})[1:-1]
    rest = json.dumps(obj)[1:-1]
    return Body(("{" + ", ".join(part for part in (first, rest) if part) + "}").encode(), None, kind)


@dataclass(frozen=True)
class RpcCase:
    method: str
    content_type: str | None
    body: Body
    chunked: bool
    authorization: str | None

    def __repr__(self) -> str:
        return (
            f"RpcCase(method={self.method!r}, content_type={self.content_type!r}, chunked={self.chunked}, "
            f"authorization={self.authorization!r}, body={self.body.data!r})"
        )


json_content_types = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON-RPC",
        " application/jsonrequest ;x=y",
    ]
)
other_content_types = st.one_of(
    st.none(),
    st.sampled_from(["text/plain", "application/jsonl", "application/x-www-form-urlencoded", "", ";"]),
    texts.filter(lambda text: text.isprintable()),
)
content_types = usually(12).flatmap(lambda right: json_content_types if right else other_content_types)


@st.composite
def rpc_cases(draw: st.DrawFn) -> RpcCase:
    body = draw(bodies())
    if draw(one_in(12)):  # over the body limit
        body = Body(
            body.data + b" " * (MAX_BODY_BYTES + 1 - len(body.data)), body.value, body.kind + "+padded"
        )
    return RpcCase(
        method=draw(
            usually(12).flatmap(
                lambda right: (
                    st.just("POST")
                    if right
                    else st.sampled_from(["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
                )
            )
        ),
        content_type=draw(content_types),
        body=body,
        chunked=draw(one_in(5)),
        authorization=draw(
            st.sampled_from([None, f"Bearer {ADMIN_TOKEN}", "Bearer not.a.token", "Basic eDp5"])
        ),
    )


# --- the oracle ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """The answer JSON-RPC 2.0 prescribes for one request object."""

    id: object
    code: int | None
    """The error code it must have; None: a call whose outcome depends on the procedure."""
    method: str | None = None
    params: Json | None = None
    has_params: bool = False


def valid_id(value: object) -> bool:
    return (
        value is None
        or isinstance(value, str)
        or (isinstance(value, int | float) and not isinstance(value, bool))
    )


def expected_item(item: Json) -> Expected | None:
    """What one request object must be answered with; None for a notification (no answer)."""
    if not isinstance(item, dict):
        return Expected(None, INVALID_REQUEST)
    if "id" in item and not valid_id(item["id"]):
        return Expected(None, INVALID_REQUEST)
    id_ = item.get("id")
    if item.get("jsonrpc") != "2.0":
        return Expected(id_, INVALID_REQUEST)
    method = item.get("method")
    if not isinstance(method, str):
        return Expected(id_, INVALID_REQUEST)
    if "id" not in item:
        return None
    return Expected(id_, None, method, item.get("params"), "params" in item)


def expected_answers(value: Json) -> tuple[bool, list[Expected]]:
    """(whether the answer is an array, the answers in order) for a body that is the JSON of `value`."""
    if isinstance(value, dict):
        item = expected_item(value)
        return False, [] if item is None else [item]
    if not isinstance(value, list) or not value or len(value) > MAX_BATCH:
        return False, [Expected(None, INVALID_REQUEST)]
    return True, [answer for answer in map(expected_item, value) if answer is not None]


def expected_status(case: RpcCase) -> int:
    if case.method != "POST":
        return 405
    media_type = (case.content_type or "").partition(";")[0].strip().lower()
    if media_type not in MEDIA_TYPES:
        return 415
    if len(case.body.data) > MAX_BODY_BYTES:
        return 413
    return 200


def check_response_object(answer: object) -> dict[str, Any]:
    """Assert `answer` is a JSON-RPC 2.0 response object; return it."""
    assert isinstance(answer, dict), answer
    assert answer.get("jsonrpc") == "2.0", answer
    assert "id" in answer, answer
    assert valid_id(answer["id"]), answer
    assert set(answer) in ({"jsonrpc", "id", "result"}, {"jsonrpc", "id", "error"}), answer
    if "error" in answer:
        error = answer["error"]
        assert isinstance(error, dict), answer
        assert type(error.get("code")) is int, answer
        assert isinstance(error.get("message"), str), answer
        data = error.get("data")
        assert isinstance(data, dict), answer
        name = data.get("code")
        assert isinstance(name, str), answer
        assert name in ErrorCode.__members__, answer
        assert data.get("httpStatus") == ErrorCode[name].http_status, answer
        protocol = PROTOCOL_ERRORS.get(error["message"])
        if protocol is not None and error["code"] == protocol[0]:
            assert name == protocol[1], answer
        else:
            assert error["code"] == ErrorCode[name].jsonrpc_code, answer
    return answer


def same_id(answered: object, sent: object) -> bool:
    return (type(answered) is type(sent) and answered == sent) or (
        isinstance(answered, int | float) and isinstance(sent, int | float) and answered == sent
    )


def check_call(answer: dict[str, Any], expected: Expected, authorization: str | None) -> None:
    """An answer against what its request prescribes."""
    assert same_id(answer["id"], expected.id), (answer, expected)
    error = answer.get("error")
    if expected.code is not None:
        assert error is not None, (answer, expected)
        assert error["code"] == expected.code, (answer, expected)
        return
    method = expected.method
    assert method is not None
    proc = REGISTRY.get(method)
    if method == "rpc.discover":
        assert error is None, answer
        event("rpc.discover")
        return
    if proc is None or method.startswith("rpc."):
        assert error is not None, (answer, expected)
        assert error["code"] == METHOD_NOT_FOUND, (answer, expected)
        return
    admitted = proc.access.kind == "public" or authorization == f"Bearer {ADMIN_TOKEN}"
    if not admitted:
        assert error is not None, (answer, expected)
        assert error["data"]["code"] == "UNAUTHORIZED", (answer, expected)
        return
    params = expected.params
    if expected.has_params and not isinstance(params, dict) and not (proc.input is None and params == []):
        assert error is not None, (answer, expected)
        assert error["code"] == INVALID_PARAMS, (answer, expected)
        return
    if error is None:
        event("a procedure answered")
        return
    code = error["data"]["code"]
    if method not in NEEDS_PAYMENT_SERVICE:
        assert code != "INTERNAL_SERVER_ERROR", (answer, expected)
    event(f"a procedure answered {code}")


def check_answer(case: RpcCase, answer: Answer) -> None:
    assert answer.status < 500, (answer.status, answer.body)
    status = expected_status(case)
    assert answer.status in ((200, 204) if status == 200 else (status,)), (answer.status, answer.body)
    event(f"status {answer.status}")
    if answer.status == 204:
        assert answer.body == b"", answer.body
        assert case.body.value is None or expected_answers(case.body.value)[1] == [], case
        return
    if case.method == "HEAD":
        assert answer.body == b""
        return
    assert answer.headers.get("content-type", "").startswith("application/json"), answer.headers
    value = msgspec.json.decode(answer.body)  # strict: NaN, Infinity and trailing garbage are errors
    if answer.status != 200:
        refusal = check_response_object(value)
        assert refusal["id"] is None, refusal
        assert refusal["error"]["data"] == {
            "code": {405: "METHOD_NOT_SUPPORTED", 413: "PAYLOAD_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE"}[
                answer.status
            ],
            "httpStatus": answer.status,
        }, refusal
        if answer.status == 405:
            assert answer.headers.get("allow") == "POST", answer.headers
        return
    answers = value if isinstance(value, list) else [value]
    assert answers, "an empty array"
    for item in answers:
        check_response_object(item)
    if case.body.value is not None:
        is_array, expected = expected_answers(case.body.value)
        assert isinstance(value, list) is is_array, (value, case.body.value)
        assert len(answers) == len(expected), (answers, expected)
        for item, wanted in zip(answers, expected, strict=True):
            check_call(item, wanted, case.authorization)
    elif case.body.kind in ("bytes", "utf-16", "odd"):
        try:
            msgspec.json.decode(case.body.data.removeprefix(b"\xef\xbb\xbf"))
        except (msgspec.DecodeError, RecursionError):
            assert isinstance(value, dict), value
            assert value["error"]["code"] == PARSE_ERROR, value
            assert value["id"] is None, value
            event("not JSON: -32700")
    if case.body.code is not None:
        assert isinstance(value, dict), value
        assert "error" in value, value
        assert value["error"]["code"] == case.body.code, value
        assert any(same_id(value["id"], id_) for id_ in case.body.ids), (value, case.body.ids)
        event(f"grafted member: {case.body.code}")


def send(client: HttpClient, gateway: ThreadedGateway, case: RpcCase) -> Answer:
    headers: dict[str, str] = {}
    if case.content_type is not None:
        headers["content-type"] = case.content_type
    if case.authorization is not None:
        headers["authorization"] = case.authorization
    return client.request(
        case.method,
        gateway.base_url + "/rpc",
        headers=headers,
        body=case.body.data,
        chunked=case.chunked,
        skip_auto_headers=("content-type",) if case.content_type is None else (),
    )


@settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=rpc_cases())
def test_rpc_answers_every_body_with_json_rpc(
    client: HttpClient, gateway: ThreadedGateway, case: RpcCase
) -> None:
    event(f"body: {case.body.kind}")
    check_answer(case, send(client, gateway, case))


# --- regressions: inputs that once broke the gateway ---------------------------------------------------------------


@st.composite
def single_requests_with_a_fragment(draw: st.DrawFn) -> RpcCase:
    """A single request with a raw fragment (deep nesting, a number out of range, a long integer) as any member."""
    body = draw(grafted_members(draw(request_objects())))
    return RpcCase("POST", "application/json", body, False, None)


@settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=single_requests_with_a_fragment())
def test_a_single_request_with_a_fragment_in_any_member_is_answered(
    client: HttpClient, gateway: ThreadedGateway, case: RpcCase
) -> None:
    """Once a 500 when the member was `id`, `jsonrpc` or `method` and the fragment a number out of range; that is
    now an Invalid Request, and any other fragment is answered as the oracle says."""
    check_answer(case, send(client, gateway, case))


@pytest.mark.parametrize(
    "body",
    [
        b'{"id":1e400}',
        b'{"jsonrpc":1e400}',
        b'{"jsonrpc":"2.0","method":-1e400,"id":1}',
        b'{"jsonrpc":"2.0","method":"ping","id":-2.5e308}',
    ],
)
def test_a_single_request_with_an_out_of_range_member_is_an_invalid_request(
    client: HttpClient, gateway: ThreadedGateway, body: bytes
) -> None:
    answer = client.request(
        "POST", gateway.base_url + "/rpc", headers={"content-type": "application/json"}, body=body
    )
    assert answer.status == 200, (answer.status, answer.body)
    assert msgspec.json.decode(answer.body) == msgspec.json.decode(
        b'{"jsonrpc":"2.0","id":null,"error":' + INVALID + b"}"
    )


@pytest.mark.parametrize("body", [b"0\x00", b'"x" y', b"1 2", b"true false", b"null,", b" -1e400 "])
def test_a_scalar_followed_by_junk_is_a_parse_error(
    client: HttpClient, gateway: ThreadedGateway, body: bytes
) -> None:
    answer = client.request(
        "POST", gateway.base_url + "/rpc", headers={"content-type": "application/json"}, body=body
    )
    assert answer.status == 200, (answer.status, answer.body)
    value = msgspec.json.decode(answer.body)
    check_response_object(value)
    assert value["id"] is None, value
    assert value["error"]["code"] == PARSE_ERROR, value
    assert value["error"]["data"]["code"] == "PARSE_ERROR", value


def test_the_oracle_catches_a_broken_envelope() -> None:
    """The checks above can fail: answers the gateway must never give are refused."""
    call = Expected(1, None, "ping")
    for broken in [
        {"jsonrpc": "2.0", "id": 1},  # neither result nor error
        {"jsonrpc": "2.0", "id": 1, "result": 1, "error": {}},  # both
        {"jsonrpc": "1.0", "id": 1, "result": 1},
        {"id": 1, "result": 1},
        {"jsonrpc": "2.0", "result": 1},  # no id
        {"jsonrpc": "2.0", "id": True, "result": 1},
        {"jsonrpc": "2.0", "id": 1, "error": {"code": "-32600", "message": "x", "data": {}}},
        {"jsonrpc": "2.0", "id": 1, "error": {"code": -32600, "message": 5}},
        {
            "jsonrpc": "2.0",
            "id": 1,
            "error": {"code": -32603, "message": "x", "data": {"code": "NOT_FOUND", "httpStatus": 404}},
        },
        {
            "error": {
                "code": -32603,
                "message": "x",
                "data": {"code": "INTERNAL_SERVER_ERROR", "httpStatus": 500},
            }
        },
    ]:
        with pytest.raises(AssertionError):
            check_response_object(broken)
    with pytest.raises(AssertionError):  # the wrong id
        check_call({"jsonrpc": "2.0", "id": 2, "result": "pong"}, call, None)
    error = {"code": -32603, "message": "x", "data": {"code": "INTERNAL_SERVER_ERROR", "httpStatus": 500}}
    with pytest.raises(AssertionError):  # a procedure that cannot fail, failing
        check_call({"jsonrpc": "2.0", "id": 1, "error": error}, call, None)
    case = RpcCase("POST", "application/json", Body(b"{}", {}, "request"), chunked=False, authorization=None)
    with pytest.raises(AssertionError):  # a 5xx
        check_answer(case, Answer(500, JSON_HEADERS, b"{}"))
    with pytest.raises(AssertionError):  # an array answering a single request
        check_answer(
            case, Answer(200, JSON_HEADERS, b'[{"jsonrpc":"2.0","id":null,"error":' + INVALID + b"}]")
        )


JSON_HEADERS: Final = CIMultiDictProxy(CIMultiDict({"content-type": "application/json"}))
INVALID: Final = b'{"code":-32600,"message":"Invalid Request","data":{"code":"BAD_REQUEST","httpStatus":400}}'
