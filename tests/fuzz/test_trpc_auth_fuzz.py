"""Fuzz `/trpc` over real HTTP where the property tests of tests/trpc and tests/http do not go: bearer tokens and
access rules, under random headers, in batches and streams.

The gateway serves a router of procedures that cannot fail and answer who called them (`{"user", "roles"}`), one
per access rule: queries `open` (PUBLIC), `mine` (USER), `staffOnly` (STAFF), `adminOnly` (ADMIN), mutations
`openMut`, `mineMut`, `adminMut`. Each request calls one to four of one kind (and now and then `nope`, which does
not exist), batched or not, with an `Authorization` header that is missing, empty, a valid HS256 token (any
`sub`, any roles), one the gateway must refuse (junk, not `Bearer`, no token, another secret, `alg: none`, HS384 or
HS512, expired, not yet valid, no `exp` or `sub`, another issuer or audience, a `sub` or `roles` of the wrong
type, a payload that is not an object, tampered, longer than 4096 bytes), or correctly signed random claims; with
`trpc-accept`/`accept: application/jsonl`, `trpc-batch-mode: stream` or junk in those headers; and with random
other headers (`x-forwarded-for`, `forwarded`, `x-real-ip` and the like, the gateway trusting 127.0.0.1 as a
proxy, cookies, origins, any name), their values any text a client can send.

For every request (the properties):
- a complete answer within DEADLINE_S, below 500;
- the answer is the tRPC shape its headers ask for: one envelope or an array of them (`application/json`, status
  agreeing with the envelopes), a JSONL stream or a v10 stream for a streamed batch, a whole-request 400 for a
  JSONL request that is not a batch;
- each call is answered as its access rule and the token say: a public procedure answers whatever the token (a
  refused one answers as nobody), a protected one answers its caller (the token's `sub` and roles) when the token
  is valid and its roles suffice, FORBIDDEN when they do not, UNAUTHORIZED (401) without a valid token; `nope` is
  NOT_FOUND. For random claims, every call of the request agrees with one of the two readings (refused, or
  accepted as the claims' `sub` and `roles`).

Regression: a correctly signed token whose `roles` claim is a list holding a list or an object (`"roles": [[]]`)
once made every request carrying it a 500, a public query included, on /trpc and /rpc alike. Such a claim is now
refused like any other `roles` that is not a list of names: the token proves nobody, so a public procedure answers
as nobody and a protected one is UNAUTHORIZED. The general token fuzz draws such claims among its wrong and random
`roles`; `test_a_valid_token_is_accepted_only_with_a_list_of_role_names` draws any `roles` beside otherwise valid
claims and knows each answer; `test_a_token_whose_roles_hold_lists_or_objects_is_refused` pins the minimal cases.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

import msgspec
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.auth.access import ADMIN, PUBLIC, STAFF, USER, Access
from gateway.context import CallContext
from gateway.registry import Router
from gateway.settings import Settings
from gateway.trpc.request import StreamMode, stream_mode
from tests.fuzz.strategies import event, usually
from tests.fuzz.tokens import (
    AUDIENCE,
    ISSUER,
    JWT_SECRET,
    Bearer,
    any_roles_bearers,
    bearers,
    make_token,
    valid_claims,
)
from tests.http.test_http_properties import exchange
from tests.support.threaded_gateway import Answer, HttpClient, ThreadedGateway, threaded_gateway
from tests.trpc.test_request_properties import (
    check_envelope,
    check_json_body,
    check_jsonl,
    check_v10_stream,
    unwrap_superjson,
)

SETTINGS: Final = Settings(
    jwt_secret=JWT_SECRET,
    gateway_jwt_issuer=ISSUER,
    gateway_jwt_audience=AUDIENCE,
    gateway_trpc_transformer="json",
    gateway_rate_limit_user=0,  # no mutation limit: the answers must depend on the request alone
    gateway_rate_limit_client=0,
    gateway_trusted_proxies="127.0.0.1",
)


class Who(msgspec.Struct):
    user: str | None
    roles: list[str]


def who(ctx: CallContext) -> Who:
    if ctx.caller is None:
        return Who(None, [])
    return Who(ctx.caller.user_id, sorted(ctx.caller.roles))


QUERIES: Final[dict[str, Access]] = {"open": PUBLIC, "mine": USER, "staffOnly": STAFF, "adminOnly": ADMIN}
MUTATIONS: Final[dict[str, Access]] = {"openMut": PUBLIC, "mineMut": USER, "adminMut": ADMIN}
ACCESS: Final = {**QUERIES, **MUTATIONS}


def who_procedure() -> Callable[[CallContext], Who]:
    def answer(ctx: CallContext) -> Who:
        return who(ctx)

    return answer


def access_router() -> Router:
    """One procedure per access rule, each answering who called it (test procedures: they cannot fail)."""
    root = Router()
    for name, access in QUERIES.items():
        root.query(who_procedure(), access=access, name=name)
    for name, access in MUTATIONS.items():
        root.mutation(who_procedure(), access=access, name=name)
    return root


@pytest.fixture(scope="module")
def gateway() -> Iterator[ThreadedGateway]:
    with threaded_gateway(SETTINGS, access_router()) as running:
        yield running


# --- strategies ---------------------------------------------------------------------------------------------------


# Header values a client can send: any text as UTF-8 but control characters (tab aside). Bytes that are not UTF-8
# and control characters in header lines are tests/http's business (raw sockets).
header_values = st.text(st.characters(exclude_categories=["Cc", "Cs"]) | st.just("\t"), max_size=12)
# Header names the gateway or aiohttp read, and any token. Not the ones that frame the message, nor
# Authorization and Content-Type, which the request sets itself.
READ_HEADERS: Final = [
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "forwarded",
    "x-real-ip",
    "x-request-id",
    "x-trpc-source",
    "trpc-accept",
    "accept",
    "trpc-batch-mode",
    "cookie",
    "origin",
    "referer",
    "user-agent",
    "accept-encoding",
    "cache-control",
]
FORBIDDEN_NAMES: Final = {
    "host",
    "connection",
    "content-length",
    "transfer-encoding",
    "content-encoding",
    "expect",
    "upgrade",
    "te",
    "trailer",
    "keep-alive",
    "authorization",
    "content-type",
}
header_names = st.sampled_from(READ_HEADERS) | st.text(
    alphabet=string.ascii_lowercase + string.digits + "-_.!#$%&'*+^`|~", min_size=1, max_size=12
).filter(lambda name: name not in FORBIDDEN_NAMES)
forwarded_values = st.sampled_from(
    [
        "203.0.113.7",
        "203.0.113.7, 10.0.0.1",
        "::1",
        "unknown",
        "",
        "for=203.0.113.7;proto=https",
        "1.2.3.4:80",
        "[::1]",
    ]
)
STREAM_HEADERS: Final = {
    "trpc-accept": ["application/jsonl", " application/jsonl ", "application/json", "*/*"],
    "accept": ["application/jsonl", "text/html, application/jsonl", "application/json", "*/*"],
    "trpc-batch-mode": ["stream", "Stream", ""],
}


@st.composite
def random_headers(draw: st.DrawFn) -> dict[str, str]:
    """Lower-case names, each once (so that the test knows the headers the server sees, in order)."""
    headers: dict[str, str] = {}
    for name in draw(st.lists(header_names, max_size=5, unique=True)):
        values = header_values
        if name in STREAM_HEADERS:
            values = st.sampled_from(STREAM_HEADERS[name]) | header_values
        elif name.startswith("x-forwarded") or name in ("forwarded", "x-real-ip"):
            values = forwarded_values | header_values
        headers[name] = draw(values)
    return headers


@dataclass(frozen=True)
class TrpcCase:
    method: str
    paths: list[str]
    batch: bool
    headers: dict[str, str]
    bearer: Bearer

    @property
    def target(self) -> str:
        return "/trpc/" + ",".join(self.paths) + ("?batch=1" if self.batch else "")

    def sent_headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        if self.method == "POST":
            headers["content-type"] = "application/json"
        if self.bearer.header is not None:
            headers["authorization"] = self.bearer.header
        return headers

    def __repr__(self) -> str:
        return (
            f"TrpcCase({self.method} {self.target}, headers={self.headers!r}, "
            f"bearer={self.bearer.kind}: {self.bearer.header!r})"
        )


@st.composite
def trpc_cases(draw: st.DrawFn, tokens: st.SearchStrategy[Bearer]) -> TrpcCase:
    procedures = draw(st.sampled_from([QUERIES, MUTATIONS]))
    names = st.sampled_from(sorted(procedures))
    paths = draw(
        st.lists(
            usually(10).flatmap(lambda known: names if known else st.just("nope")), min_size=1, max_size=4
        )
    )
    batch = len(paths) > 1 or draw(st.booleans())
    headers = draw(random_headers())
    if draw(st.booleans()):  # one of the stream headers, meaningfully
        name = draw(st.sampled_from(sorted(STREAM_HEADERS)))
        headers[name] = draw(st.sampled_from(STREAM_HEADERS[name]))
    method = "GET" if procedures is QUERIES else "POST"
    return TrpcCase(method, paths, batch, headers, draw(tokens))


# --- the oracle ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    sub: str
    roles: frozenset[str]


def readings(bearer: Bearer) -> list[Identity | None]:
    """Who the request may prove to be: the token's caller, nobody, or (random claims) either."""
    if bearer.accepted is True:
        assert bearer.sub is not None
        return [Identity(bearer.sub, bearer.roles)]
    if bearer.accepted is False:
        return [None]
    claims = bearer.claims
    sub, roles = claims.get("sub"), claims.get("roles", [])
    if isinstance(sub, str) and isinstance(roles, list) and all(isinstance(role, str) for role in roles):
        return [None, Identity(sub, frozenset(roles))]
    return [None]


def expected(path: str, identity: Identity | None) -> tuple[str, Any]:
    """("data", who) or ("error", tRPC code) for one call."""
    access = ACCESS.get(path)
    if access is None:
        return "error", "NOT_FOUND"
    caller: dict[str, object] = (
        {"user": identity.sub, "roles": sorted(identity.roles)} if identity else {"user": None, "roles": []}
    )
    answer = ("data", caller)
    if access.kind == "public":
        return answer
    if identity is None:
        return "error", "UNAUTHORIZED"
    if access.kind == "role" and not ({access.role, "admin"} & identity.roles):
        return "error", "FORBIDDEN"
    return answer


def outcome(envelope: Any) -> tuple[str, Any]:
    """("data", value) or ("error", tRPC code) of one envelope."""
    check_envelope(envelope)
    if "error" in envelope:
        error: Any = unwrap_superjson(envelope["error"])
        return "error", error["data"]["code"]
    return "data", envelope["result"].get("data")


def envelopes(case: TrpcCase, answer: Answer) -> list[Any] | None:
    """Check the answer's shape; return the envelopes of the calls in order (None: a whole-request error)."""
    assert answer.status < 500, (answer.status, answer.body)
    assert answer.headers.get("content-type", "").startswith("application/json"), answer.headers
    mode = stream_mode(CIMultiDict(case.sent_headers()))
    if mode is StreamMode.JSONL and not case.batch:
        check_json_body(answer.body, answer.status, None)
        assert answer.status == 400, (answer.status, answer.body)
        assert outcome(msgspec.json.decode(answer.body)) == ("error", "BAD_REQUEST")
        event("JSONL without batch: 400")
        return None
    if case.batch and mode is not StreamMode.NONE:
        assert answer.status == 200, (answer.status, answer.body)
        if mode is StreamMode.JSONL:
            assert answer.body.endswith(b"\n"), answer.body
            lines = answer.body.split(b"\n")[:-1]
            check_jsonl([line + b"\n" for line in lines])
            calls = sorted(msgspec.json.decode(line) for line in lines[1:])
            event("JSONL stream")
            return [call[2][0][0] for call in calls]
        check_v10_stream(_v10_chunks(answer.body))
        event("v10 stream")
        streamed = msgspec.json.decode(answer.body)
        return [streamed[str(index)] for index in range(len(case.paths))]
    check_json_body(answer.body, answer.status, len(case.paths) if case.batch else None)
    value = msgspec.json.decode(answer.body)
    return value if case.batch else [value]


def _v10_chunks(body: bytes) -> list[bytes]:
    """A v10 stream's chunks as sent: one line each (`{…\\n`, `,…\\n`), then `}`."""
    assert body.endswith(b"}"), body
    return [line + b"\n" for line in body[:-1].split(b"\n")[:-1]] + [b"}"]


def check_answer(case: TrpcCase, answer: Answer) -> None:
    calls = envelopes(case, answer)
    if calls is None:
        return
    assert len(calls) == len(case.paths), (calls, case.paths)
    got = [outcome(envelope) for envelope in calls]
    wanted = [[expected(path, identity) for path in case.paths] for identity in readings(case.bearer)]
    assert got in wanted, (got, wanted)
    for path, result in zip(case.paths, got, strict=True):
        event(
            f"{ACCESS[path].kind if path in ACCESS else 'nope'}: {result[0] if result[0] == 'data' else result[1]}"
        )


def send(client: HttpClient, gateway: ThreadedGateway, case: TrpcCase) -> Answer:
    return client.request(
        case.method,
        gateway.base_url + case.target,
        headers=case.sent_headers(),
        body=b"{}" if case.method == "POST" else None,
    )


FUZZ: Final = settings(
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


@settings(FUZZ, max_examples=300)
@given(case=trpc_cases(bearers()))
def test_tokens_and_access_rules_under_random_headers(
    client: HttpClient, gateway: ThreadedGateway, case: TrpcCase
) -> None:
    event(f"token: {case.bearer.kind}")
    check_answer(case, send(client, gateway, case))


# Header value bytes HTTP allows (obs-text included): tab, visible ASCII, space, and 0x80-0xFF, UTF-8 or not.
field_bytes = st.binary(max_size=40).map(
    lambda data: bytes(byte for byte in data if byte == 9 or 32 <= byte != 127)
)


@settings(FUZZ, max_examples=150)
@given(
    scheme=st.sampled_from([b"Bearer ", b"bearer ", b"", b"Basic "]),
    token=field_bytes,
    path=st.sampled_from(["open", "mine", "adminOnly"]),
)
def test_authorization_of_any_bytes(gateway: ThreadedGateway, scheme: bytes, token: bytes, path: str) -> None:
    """Over a raw socket, an `Authorization` header of any bytes (what an HTTP client cannot send): the public
    query answers as nobody, a protected one is UNAUTHORIZED."""
    port = int(gateway.base_url.rsplit(":", 1)[1])
    request = (
        f"GET /trpc/{path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n".encode()
        + b"Authorization: "
        + scheme
        + token
        + b"\r\n\r\n"
    )
    answer = exchange(port, request, give_up=False, head_request=False)
    assert answer is not None
    assert answer.status < 500, (answer.status, answer.body)
    check_json_body(answer.body, answer.status, None)
    got = outcome(msgspec.json.decode(answer.body))
    assert got == expected(path, None), got


def test_the_oracle_refuses_a_wrong_answer() -> None:
    """The checks can fail: a forged token answered as its `sub`, or a protected call answered to nobody."""
    forged = Bearer("Bearer x", "wrong secret", False)
    nobody: dict[str, object] = {"user": None, "roles": []}
    case = TrpcCase("GET", ["open", "mine"], True, {}, forged)
    assert [expected(path, None) for path in case.paths] == [("data", nobody), ("error", "UNAUTHORIZED")]
    wrong = [{"result": {"data": {"user": "mallory", "roles": ["admin"]}}}, {"result": {"data": nobody}}]
    headers = CIMultiDictProxy(CIMultiDict({"content-type": "application/json"}))
    answer = Answer(200, headers, msgspec.json.encode(wrong))
    with pytest.raises(AssertionError):
        check_answer(case, answer)


# --- regressions: inputs that once broke the gateway ---------------------------------------------------------------


@settings(FUZZ, max_examples=150)
@given(case=trpc_cases(any_roles_bearers()))
def test_a_valid_token_is_accepted_only_with_a_list_of_role_names(
    client: HttpClient, gateway: ThreadedGateway, case: TrpcCase
) -> None:
    """Otherwise valid claims with any `roles` (lists and objects among its items too): a list of names proves
    `sub` with those roles, anything else refuses the token as a whole (never a 500)."""
    event(f"token: {case.bearer.kind}")
    check_answer(case, send(client, gateway, case))


NESTED_ROLES: Final[list[object]] = [[[]], [{}], ["admin", ["admin"]], [{"r": 1}, "staff"]]


@pytest.mark.parametrize("roles", NESTED_ROLES, ids=lambda roles: msgspec.json.encode(roles).decode())
@pytest.mark.parametrize(
    ("target", "body", "status", "answer"),
    [
        ("/trpc/open", None, 200, ("data", {"user": None, "roles": []})),
        ("/trpc/mine", None, 401, ("error", "UNAUTHORIZED")),
        ("/rpc", b'{"jsonrpc":"2.0","id":1,"method":"open"}', 200, ("data", {"user": None, "roles": []})),
        ("/rpc", b'{"jsonrpc":"2.0","id":1,"method":"mine"}', 200, ("error", "UNAUTHORIZED")),
    ],
    ids=["trpc public", "trpc protected", "jsonrpc public", "jsonrpc protected"],
)
def test_a_token_whose_roles_hold_lists_or_objects_is_refused(
    client: HttpClient,
    gateway: ThreadedGateway,
    roles: object,
    target: str,
    body: bytes | None,
    status: int,
    answer: tuple[str, object],
) -> None:
    """`Authorization: Bearer <HS256 token of {"sub": "u1", "exp": …, "roles": [[]]}>` (once a 500 on every
    request): refused as "roles is not a list of names", so the public query answers as nobody and the protected
    one is UNAUTHORIZED."""
    token = make_token({**valid_claims("u1", None), "roles": roles})
    got = client.request(
        "GET" if body is None else "POST",
        gateway.base_url + target,
        headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
        body=body,
    )
    assert got.status == status, (got.status, got.body)
    value = msgspec.json.decode(got.body)
    if body is None:
        assert outcome(value) == answer, value
    elif "error" in value:
        assert value["id"] == 1, value
        assert ("error", value["error"]["data"]["code"]) == answer, value
    else:
        assert value == {"jsonrpc": "2.0", "id": 1, "result": answer[1]}, value
        assert answer[0] == "data"
