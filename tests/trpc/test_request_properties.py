"""Property-based tests: no request, however hostile, breaks the tRPC wire layer.

The issue's property: "arbitrary paths, query strings, headers and bodies never produce a 5xx, a hang, or a body
that is not a tRPC envelope". Checked here without a server, on the framework-free resolver and the pure parsing
functions (tests/http/test_http_properties.py checks it again over a real socket):

1. `TrpcResolver.resolve`, for any method (HEAD aside: the aiohttp route answers it), raw path, query, headers,
   body and settings, against a router whose procedures never fail on their own:
   - no exception escapes, and the response (a stream included) is complete within 5 s;
   - the status is below 500;
   - a complete body is strict JSON: one envelope (`{"result":{}}`, `{"result":{"data":…}}` or
     `{"error":{"message":str,"code":int,"data":{"code":str,"httpStatus":int,…}}}`, the error possibly wrapped as
     superjson `{"error":{"json":{…}}}`) or a non-empty array of envelopes, one per path, in order;
   - `error.code` and `data.httpStatus` are those of `data.code` in the v11 code table; a single call's status is its
     envelope's; a batch's status is the shared status, else 207; a 405 carries `allow`;
   - a JSONL stream (status 200) is lines ending in `\\n`, none empty, each strict JSON: the head names every call
     once, then one chunk per call holding its envelope; a v10 stream is `{`/`,`-led lines ending in `\\n` and a
     final `}`, which together are a JSON object of envelopes keyed by call index.
   Two targeted properties pin what the fixes promise: an untyped input (`note` takes any) nested up to
   MAX_INPUT_DEPTH levels reaches the procedure, and deeper, msgspec's own recursion limit (~1000) and beyond
   included, plain, superjson or batched, is a 400 `Input is nested more than 100 levels deep`; any datetime msgspec
   reads comes back as JavaScript's `toISOString()` writes it (`0000-12-31T23:00:00.000Z`, `+010000-01-01T…`
   included), against a reference computed independently of the gateway.
2. `parse_paths` raises nothing but a whole-request BAD_REQUEST `TRPCError`, and percent-decoding round-trips:
   `parse_paths(quote(x), is_batch=False) == [x]`. `check_content_type` raises nothing but a whole-request
   UNSUPPORTED_MEDIA_TYPE, and never for GET or for `application/json` with any case and parameters. `stream_mode`
   never raises and follows the `trpc-accept` > `accept` > `trpc-batch-mode` rule. `parse_connection_params` raises
   nothing but PARSE_ERROR. `InputReader(...)` never raises and its `read` raises nothing but `TRPCError`.

What the strategies generate, with nothing held back for a known bug and no failure excused:
- inputs of every shape (each field right or wrong, superjson-wrapped with real and broken `meta`, batch dicts with
  missing and extra keys), cut short, odd tokens, and raw fragments grafted in anywhere (the whole input, a batch
  entry, a field, an item): nesting from 1 level to 3 times Python's recursion limit (lists, objects, both,
  unterminated), numbers out of range (`1e400`) and 400-digit integers; an input may start with the wrong type and
  be malformed further on;
- datetimes in every year msgspec accepts (1-9999), naive or with any whole-minute offset under a day, the first
  and last days (year 0 or 10000 in UTC) drawn on purpose;
- header values of any characters, bytes that are not UTF-8 included (as aiohttp hands them over: lone
  surrogates), in the content-type too, which the 415 message quotes;
- paths of procedure names and any text, newlines and other control characters included, raw or percent-encoded,
  with valid and broken escapes.
What stays bounded, each for a reason given where it is set: small JSON values and texts (speed), whole-minute UTC
offsets (RFC 3339 has no others), no HEAD (the route answers it).

The bugs these properties found are pinned by regression tests at the end of this module.
"""

from __future__ import annotations

import asyncio
import enum
import json
import string
import sys
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any, Final, ParamSpec, TypeVar
from urllib.parse import quote, unquote

import msgspec
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from gateway.auth.access import PUBLIC
from gateway.context import CallContext
from gateway.errors import ErrorCode, TRPCError
from gateway.registry import InputSpec, Registry, Router
from gateway.settings import Settings
from gateway.trpc.envelopes import response_status
from gateway.trpc.inputs import MAX_INPUT_DEPTH, InputReader
from gateway.trpc.request import (
    StreamMode,
    check_content_type,
    parse_connection_params,
    parse_paths,
    stream_mode,
)
from gateway.trpc.resolver import TrpcRequest, TrpcResolver, TrpcResponse
from tests.support.fixture_router import fixture_router

RESOLVE_TIMEOUT_S: Final = 5.0
P = ParamSpec("P")
T = TypeVar("T")

# --- a router whose procedures never fail on their own: any 5xx is the gateway's ----------------------------------


class Status(enum.Enum):
    DRAFT = "draft"
    PAID = "paid"


class LookupInput(msgspec.Struct):
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    limit: Annotated[int, msgspec.Meta(ge=1, le=100)] = 10


class LookupOut(msgspec.Struct):
    id: str
    limit: int


class SearchInput(msgspec.Struct, rename="camel"):
    tags: list[str] = []
    since: datetime | None = None


class SearchOut(msgspec.Struct):
    tags: list[str]
    since: datetime | None


class Customer(msgspec.Struct):
    email: Annotated[str, msgspec.Meta(pattern=r"^[^@\s]+@[^@\s]+$")]
    name: str | None = None


class Item(msgspec.Struct):
    sku: Annotated[str, msgspec.Meta(min_length=1)]
    quantity: Annotated[int, msgspec.Meta(gt=0, le=1000)]
    price: Annotated[float, msgspec.Meta(ge=0, le=1_000_000)]


class CreateOrder(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    customer: Customer
    items: Annotated[list[Item], msgspec.Meta(min_length=1, max_length=20)]
    placed_at: datetime
    status: Status = Status.DRAFT


class OrderSummary(msgspec.Struct, rename="camel"):
    email: str
    lines: int
    total: float
    placed_at: datetime
    status: Status


def property_router() -> Router:
    """Queries with a struct input, an optional input and none; mutations with a constrained nested input, none,
    and any input. Each returns a value built from its validated input and cannot fail."""
    root = Router()

    @root.query(access=PUBLIC)
    async def lookup(ctx: CallContext, input: LookupInput) -> LookupOut:
        return LookupOut(id=input.id, limit=input.limit)

    @root.query(access=PUBLIC)
    async def search(ctx: CallContext, input: SearchInput | None) -> SearchOut:
        return (
            SearchOut(tags=[], since=None) if input is None else SearchOut(tags=input.tags, since=input.since)
        )

    @root.query(access=PUBLIC)
    async def ping(ctx: CallContext) -> str:
        return "pong"

    @root.mutation(access=PUBLIC)
    async def note(ctx: CallContext, input: Any) -> str:
        return "undefined" if input is msgspec.UNSET else type(input).__name__

    orders = Router()

    @orders.mutation(access=PUBLIC)
    async def create(ctx: CallContext, input: CreateOrder) -> OrderSummary:
        total = sum(item.quantity * item.price for item in input.items)
        return OrderSummary(input.customer.email, len(input.items), total, input.placed_at, input.status)

    @orders.mutation(access=PUBLIC)
    async def touch(ctx: CallContext) -> None:
        return None

    root.include("orders", orders)
    return root


REGISTRY: Final = Registry(property_router())
SETTINGS_VARIANTS: Final = [
    Settings(),
    Settings(gateway_trpc_transformer="json"),
    Settings(gateway_trpc_transformer="superjson"),
    Settings(gateway_trpc_allow_method_override=True),
    Settings(gateway_trpc_max_batch_size=2),
    Settings(gateway_trpc_allow_batching=False),
    Settings(node_env="production"),
]
RESOLVERS: Final = [TrpcResolver(REGISTRY, variant) for variant in SETTINGS_VARIANTS]
INPUT_SPECS: Final[list[InputSpec]] = [proc.input for proc in REGISTRY if proc.input is not None]
PROCEDURE_NAMES: Final = [proc.path for proc in REGISTRY]
QUERY_NAMES: Final = [proc.path for proc in REGISTRY if proc.kind == "query"]
MUTATION_NAMES: Final = [proc.path for proc in REGISTRY if proc.kind == "mutation"]
JSONRPC_CODES: Final = {code.name: code.jsonrpc_code for code in ErrorCode}
HTTP_STATUSES: Final = {code.name: code.http_status for code in ErrorCode}


# --- strategies ---------------------------------------------------------------------------------------------------

Json = None | bool | int | float | str | list[Any] | dict[str, Any]

# Small values keep an example fast; sizes and depths that matter come from raw_fragments and the targeted tests.
texts = st.text(max_size=12)
surrogates = st.sampled_from([chr(code) for code in range(0xDC80, 0xDD00)])
# Header values as aiohttp hands them over: any text, and bytes that are not UTF-8 as lone surrogates.
header_texts = st.lists(st.one_of(st.characters(), surrogates), max_size=12).map("".join)
huge_ints = st.integers(min_value=-(10**40), max_value=10**40) | st.sampled_from([2**63, -(2**63) - 1, 2**64])
plain_floats = st.floats(allow_nan=False, allow_infinity=False)
scalars: st.SearchStrategy[Json] = st.one_of(
    st.none(), st.booleans(), st.integers(), huge_ints, plain_floats, texts
)
json_values: st.SearchStrategy[Json] = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)

# UTC offsets RFC 3339 (so msgspec) accepts: whole minutes, under a day. Offsets with seconds are left out only
# because `isoformat` would write them as `+01:00:30`, which is no datetime at all (date_like has such junk).
utc_offsets = st.one_of(
    st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))]),
    st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda minutes: timezone(timedelta(minutes=minutes))),
)
any_datetimes = st.one_of(
    st.datetimes(timezones=st.none() | utc_offsets),  # years 1-9999, naive (read as UTC) or with an offset
    # The first and last days, where an offset puts the UTC value in year 0 or 10000: rare in a uniform draw.
    st.datetimes(max_value=datetime(1, 1, 2), timezones=utc_offsets),
    st.datetimes(min_value=datetime(9999, 12, 31), timezones=utc_offsets),
)
iso_datetimes = any_datetimes.map(datetime.isoformat)


def mostly(usual: st.SearchStrategy[Any], otherwise: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`usual` five times in six, else `otherwise`."""
    return st.integers(0, 5).flatmap(lambda pick: usual if pick else otherwise)


def maybe_wrong(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A field's value: usually of the right kind, sometimes any JSON at all."""
    return mostly(strategy, json_values)


date_like = mostly(iso_datetimes, st.sampled_from(["2024-02-30T00:00:00Z", "2024-01-01", "yesterday", ""]))
emails = mostly(
    st.sampled_from(["a@b.co", "pay@shop.fr"]), st.sampled_from(["no-at-sign", "", "x@", "a b@c"])
)
ids = mostly(st.text(min_size=1, max_size=12), st.just("") | st.text(min_size=65, max_size=70))

lookup_inputs = st.fixed_dictionaries(
    {"id": maybe_wrong(ids)},
    optional={"limit": maybe_wrong(mostly(st.integers(1, 100), st.integers(-5, 150) | huge_ints))},
)
search_inputs = st.none() | st.fixed_dictionaries(
    {},
    optional={"tags": maybe_wrong(st.lists(texts, max_size=3)), "since": maybe_wrong(date_like | st.none())},
)
items = st.fixed_dictionaries(
    {
        "sku": maybe_wrong(ids),
        "quantity": maybe_wrong(mostly(st.integers(1, 1000), st.integers(-2, 1002) | huge_ints)),
        "price": maybe_wrong(mostly(st.floats(0, 1_000_000), st.floats(-1, 2_000_000) | huge_ints)),
    }
)
orders = st.fixed_dictionaries(
    {
        "customer": maybe_wrong(
            st.fixed_dictionaries({"email": emails}, optional={"name": maybe_wrong(texts | st.none())})
        ),
        "items": maybe_wrong(mostly(st.lists(items, min_size=1, max_size=3), st.lists(items, max_size=22))),
        "placedAt": maybe_wrong(date_like),
    },
    optional={"status": mostly(st.sampled_from(["draft", "paid"]), st.just("refunded") | json_values)},
)
order_inputs = mostly(  # the struct forbids unknown fields
    orders, st.builds(lambda order, extra: {**order, **extra}, orders, st.dictionaries(texts, json_values))
)
procedure_inputs: st.SearchStrategy[Json] = st.one_of(lookup_inputs, search_inputs, order_inputs, json_values)

# superjson `meta.values`: realistic annotations, broken ones, and trees of any JSON.
sj_annotations = st.sampled_from(
    [
        ["Date"],
        ["undefined"],
        ["bigint"],
        ["number"],
        ["set"],
        ["map"],
        ["regexp"],
        ["URL"],
        ["Error"],
        [["typed-array", "Uint8Array"]],
        [["typed-array", "BigInt64Array"]],
        [["class", "Money"]],
        ["nope"],
        [],
        ["set", {"0": ["Date"]}],
        [["typed-array"]],
    ]
)
meta_paths = st.sampled_from(["", "placedAt", "since", "items.0.price", "a\\.b", "x\\y", "0", "items.9", "."])
meta_values: st.SearchStrategy[Json] = st.one_of(
    sj_annotations, st.dictionaries(meta_paths | texts, sj_annotations, max_size=3), json_values
)
metas: st.SearchStrategy[Json] = st.one_of(
    st.fixed_dictionaries(
        {"values": meta_values}, optional={"v": st.sampled_from([1, 0, "1", None, True, 2.5])}
    ),
    json_values,
)


def superjson_wrapped(value: st.SearchStrategy[Json]) -> st.SearchStrategy[Json]:
    return st.one_of(
        st.builds(lambda v: {"json": v}, value),
        st.builds(lambda v, m: {"json": v, "meta": m}, value, metas),
    )


call_inputs: st.SearchStrategy[Json] = st.one_of(procedure_inputs, superjson_wrapped(procedure_inputs))


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def broken_json(text: str) -> st.SearchStrategy[str]:
    """Cut a JSON text short, somewhere."""
    return st.integers(0, max(len(text) - 1, 0)).map(lambda cut: text[:cut])


def nested_objects(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


RECURSION_LIMIT: Final = sys.getrecursionlimit()
depths = st.one_of(
    st.integers(1, 3 * RECURSION_LIMIT),
    st.integers(MAX_INPUT_DEPTH - 2, MAX_INPUT_DEPTH + 2),  # the gateway's limit on untyped input
    st.integers(RECURSION_LIMIT - 100, RECURSION_LIMIT + 10),  # msgspec's RecursionError (the stack varies)
)
deep_texts = st.builds(
    lambda shape, depth: shape(depth),
    st.sampled_from(
        [
            nested,
            nested_objects,
            lambda depth: '{"json":' + nested(depth) + "}",
            lambda depth: '[{"k":' * depth + "[1e400]" + "}]" * depth,
            lambda depth: "[" * depth,  # and cut short
        ]
    ),
    depths,
)
OUT_OF_RANGE_NUMBERS: Final = ["1e400", "-1e400", "1E+999", "-2.5e308", "123456789e300"]
"""JSON numbers that are valid grammar but no float: msgspec answers `Number out of range`."""
raw_fragments = st.one_of(
    deep_texts, st.sampled_from(OUT_OF_RANGE_NUMBERS), st.integers(1, 400).map("9".__mul__)
)
"""JSON texts `json.dumps` cannot write: deep nesting and numbers out of range."""

odd_json_texts = st.one_of(
    texts,
    st.sampled_from(
        ["{", "[1,", '{"0":', "1e999", "-0", "NaN", "null", "undefined", '"\\ud800"', "\ufeff{}"]
    ),
    raw_fragments,
    json_values.map(lambda v: json.dumps(v)).flatmap(broken_json),
    st.lists(st.floats(), max_size=3).map(json.dumps),  # NaN/Infinity tokens: not JSON
)


GRAFT: Final = "\x00graft\x00"
GRAFT_JSON: Final = json.dumps(GRAFT)


@st.composite
def grafted(draw: st.DrawFn, value: Json) -> str:
    """The JSON text of `value` with one node (the root, a field, an item, at any depth) replaced by a raw
    fragment: deep nesting or a number out of range, where a client's input or a batch entry would be."""

    def graft(node: Json) -> Json:
        if isinstance(node, dict) and node and draw(st.integers(0, 3)):
            key = draw(st.sampled_from(sorted(node)))
            return {**node, key: graft(node[key])}
        if isinstance(node, list) and node and draw(st.integers(0, 3)):
            at = draw(st.integers(0, len(node) - 1))
            return [*node[:at], graft(node[at]), *node[at + 1 :]]
        return GRAFT

    fragment: str = draw(raw_fragments)
    return json.dumps(graft(value)).replace(GRAFT_JSON, fragment)


def json_texts(value: Json) -> st.SearchStrategy[str]:
    """`value` as JSON text; one time in three with a raw fragment grafted in."""
    return st.integers(0, 2).flatmap(lambda pick: grafted(value) if pick == 0 else st.just(json.dumps(value)))


@st.composite
def input_texts(draw: st.DrawFn, calls: int) -> str:
    """The raw input of a request with `calls` paths: one call's input, a batch dict, or broken text."""
    kind = draw(st.sampled_from(["single", "batch", "batch", "odd"]))
    if kind == "odd":
        odd: str = draw(odd_json_texts)
        return odd
    if kind == "single":
        value = draw(call_inputs)
    else:
        keys = [str(index) for index in range(calls + 1) if draw(st.booleans())]
        batch = {key: draw(call_inputs) for key in keys}
        if draw(st.booleans()):
            batch.update(draw(st.dictionaries(texts, json_values, max_size=2)))
        value = batch
    text: str = draw(json_texts(value))
    return text


names = st.one_of(
    st.sampled_from([*PROCEDURE_NAMES, "orders", "nope", "", "orders.", ".ping", "PING", "orders~create"]),
    st.text(alphabet=string.ascii_letters + ".,_~-", max_size=8),
    texts,
    st.text(st.characters(categories=["Cc"]), min_size=1, max_size=3),  # newlines, other control characters
)
broken_escapes = st.sampled_from(["%", "%Z", "%G1", "%e9", "%ED%A0%80", "%C3", "%%", "%2", "%FF%FE"])
valid_escapes = st.sampled_from(["%2C", "%2c", "%2E", "%20", "%C3%A9", "%2F", "%25", "%F0%9F%92%B3"])


@st.composite
def raw_paths(draw: st.DrawFn) -> str:
    """A raw (still percent-encoded) path: procedure names joined with `,`, parts escaped or broken, slashes."""
    parts = draw(st.lists(names, min_size=1, max_size=5))
    style = draw(st.sampled_from(["plain", "quoted", "quoted", "spliced"]))
    path = ",".join(parts)
    if style == "quoted":
        path = quote(path, safe=draw(st.sampled_from(["", ",", ".,", "/"])))
    elif style == "spliced":
        pieces = [*path]
        for _ in range(draw(st.integers(1, 3))):
            at = draw(st.integers(0, len(pieces)))
            pieces.insert(at, draw(broken_escapes | valid_escapes))
        path = "".join(pieces)
    return draw(st.sampled_from(["", "/", "//"])) + path + draw(st.sampled_from(["", "/"]))


connection_params = mostly(
    st.dictionaries(texts, texts, max_size=3).map(json.dumps), json_values.map(json.dumps) | odd_json_texts
)


@st.composite
def queries(draw: st.DrawFn, calls: int) -> dict[str, str]:
    query: dict[str, str] = {}
    if draw(st.booleans()):
        query["batch"] = draw(st.sampled_from(["1", "1", "true", "0", "", " 1", "01"]) | texts)
    if draw(st.integers(0, 3)):
        query["input"] = draw(input_texts(calls))
    if draw(st.integers(0, 4)) == 0:
        query["connectionParams"] = draw(connection_params)
    if draw(st.integers(0, 4)) == 0:
        query.update(draw(st.dictionaries(texts, texts, max_size=2)))
    return query


content_types = st.one_of(
    st.sampled_from(
        [
            "application/json",
            "Application/JSON; charset=utf-8",
            " application/json ",
            "application/json;",
            "application/jsonl",
            "text/plain",
            "multipart/form-data; boundary=x",
            "application/octet-stream",
            "",
            ";",
        ]
    ),
    header_texts,  # bytes that are not UTF-8 included: quoted in the 415 message
)
STREAM_ACCEPTS: Final = ["application/jsonl", " application/jsonl ", "application/json", "*/*", ""]


@st.composite
def header_maps(draw: st.DrawFn) -> CIMultiDict[str]:
    """Headers as aiohttp gives them: case-insensitive names, any case on the wire."""
    headers: CIMultiDict[str] = CIMultiDict()

    def add(name: str, values: st.SearchStrategy[str]) -> None:
        if draw(st.booleans()):
            headers.add(draw(st.sampled_from([name, name.upper(), name.title()])), draw(values))

    if draw(mostly(st.just(True), st.just(False))):  # else 415 for nearly everything but GET
        headers["Content-Type"] = draw(mostly(st.just("application/json"), content_types))
    add("content-type", content_types)
    add("trpc-accept", st.sampled_from(STREAM_ACCEPTS) | header_texts)
    add("accept", st.sampled_from([*STREAM_ACCEPTS, "text/html, application/jsonl", "application/jsonl;q=1"]))
    add("trpc-batch-mode", st.sampled_from(["stream", "Stream", ""]) | header_texts)
    add("x-junk", header_texts)
    return headers


@st.composite
def bodies(draw: st.DrawFn, calls: int) -> bytes | None:
    kind = draw(st.sampled_from(["none", "empty", "input", "input", "bytes", "not-utf8"]))
    if kind == "none":
        return None
    if kind == "empty":
        return b""
    if kind == "input":
        return draw(input_texts(calls)).encode()
    if kind == "bytes":
        return draw(st.binary(max_size=64))
    return b"\xff\xfe" + draw(input_texts(calls)).encode("utf-16-le")


@dataclass(frozen=True)
class Case:
    resolver: TrpcResolver
    request: TrpcRequest

    def __repr__(self) -> str:  # what hypothesis prints for a falsifying example
        r = self.request
        return (
            f"Case(settings={self.resolver.settings!r}, method={r.method!r}, path={r.path!r}, "
            f"query={dict(r.query)!r}, headers={list(r.headers.items())!r}, body={r.body!r}, "
            f"body_error={r.body_error!r})"
        )


methods = st.one_of(
    st.sampled_from(["GET", "GET", "POST", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "get"]),
    # Not HEAD: the aiohttp route answers it (an empty 204) before the resolver is involved.
    st.text(alphabet=string.ascii_uppercase + "-", min_size=1, max_size=7).filter(lambda m: m != "HEAD"),
)


@st.composite
def hostile_cases(draw: st.DrawFn) -> Case:
    """Every part drawn on its own, from realistic and hostile values alike."""
    path = draw(raw_paths())
    calls = path.count(",") + 1
    body_error = TRPCError(ErrorCode.PAYLOAD_TOO_LARGE) if draw(st.integers(0, 9)) == 0 else None
    request = TrpcRequest(
        method=draw(methods),
        path=path,
        query=draw(queries(calls)),
        headers=draw(header_maps()),
        body=draw(bodies(calls)),
        body_error=body_error,
    )
    return Case(draw(st.sampled_from(RESOLVERS)), request)


CALL_INPUTS: Final[dict[str, st.SearchStrategy[Json]]] = {
    "lookup": lookup_inputs,
    "search": search_inputs,
    "orders.create": order_inputs,
    "note": json_values,
}
DATE_FIELDS: Final = ("placedAt", "since")


@st.composite
def superjson_call_input(draw: st.DrawFn, value: Json) -> Json:
    """`value` as a superjson client sends it: dates annotated (when the strings look like dates), or not."""
    if isinstance(value, dict) and draw(st.booleans()):
        dates = {key: ["Date"] for key in DATE_FIELDS if isinstance(value.get(key), str)}
        if dates:
            return {"json": value, "meta": {"values": dates, "v": draw(st.sampled_from([1, None]))}}
    return {"json": value}


@st.composite
def realistic_cases(draw: st.DrawFn) -> Case:
    """Requests shaped like a client's (known paths, fitting method, inputs, content type), with flaws mixed in."""
    # One kind per batch, as clients send them; mixed kinds (a whole-request 400) now and then.
    same_kind = draw(
        mostly(st.sampled_from([QUERY_NAMES, MUTATION_NAMES]), st.just([*PROCEDURE_NAMES, "nope"]))
    )
    paths = draw(st.lists(st.sampled_from(same_kind), min_size=1, max_size=4))
    is_batch = len(paths) > 1 or draw(st.booleans())
    use_superjson = draw(st.integers(0, 3)) == 0
    inputs: dict[int, Json] = {}
    for index, path in enumerate(paths):
        if path in CALL_INPUTS and draw(mostly(st.just(True), st.just(False))):
            value = draw(CALL_INPUTS[path])
            inputs[index] = draw(superjson_call_input(value)) if use_superjson else value
    whole: Json = {str(index): value for index, value in inputs.items()} if is_batch else inputs.get(0)
    raw = json.dumps(whole) if is_batch or 0 in inputs else None
    # One time in four, malformed or extreme: odd, cut short, or with a raw fragment grafted in.
    if draw(st.integers(0, 3)) == 0:
        raw = draw(
            st.one_of(
                odd_json_texts,
                json_values.map(json.dumps).flatmap(broken_json),
                broken_json(raw or ""),
                grafted(whole),
            )
        )
    procedure = REGISTRY.get(paths[0])
    usual = "POST" if procedure is not None and procedure.kind == "mutation" else "GET"
    method = draw(st.sampled_from([usual] * 8 + ["GET", "POST", "PUT", "PATCH"]))
    path = ",".join(paths)
    if draw(st.integers(0, 3)) == 0:
        path = quote(path, safe=draw(st.sampled_from(["", ".", ","])))
    path = draw(st.sampled_from(["", "", "/"])) + path
    query: dict[str, str] = {"batch": "1"} if is_batch else {}
    if method == "GET" and raw is not None:
        query["input"] = raw
    if draw(st.integers(0, 5)) == 3:
        query["connectionParams"] = draw(connection_params)
    headers: CIMultiDict[str] = CIMultiDict()
    if method != "GET" or draw(st.booleans()):
        headers["Content-Type"] = draw(
            mostly(st.sampled_from(["application/json", "Application/JSON; charset=utf-8"]), content_types)
        )
    stream = draw(st.sampled_from([None] * 5 + ["trpc-accept", "accept", "trpc-batch-mode"]))
    if stream == "trpc-batch-mode":
        headers[stream] = "stream"
    elif stream is not None:
        headers[stream] = "application/jsonl"
    body = raw.encode() if method != "GET" and raw is not None else None
    return Case(draw(st.sampled_from(RESOLVERS)), TrpcRequest(method, path, query, headers, body))


requests = st.one_of(realistic_cases(), realistic_cases(), hostile_cases())


# --- checks -------------------------------------------------------------------------------------------------------


def unwrap_superjson(value: object) -> object:
    """The `json` of a superjson envelope; any other value as it is."""
    if isinstance(value, dict) and "json" in value and set(value) <= {"json", "meta"}:
        return value["json"]
    return value


def check_error_shape(shape: object) -> int:
    """Assert the inner `error` object of an envelope is well formed; return its HTTP status."""
    assert isinstance(shape, dict), shape
    assert isinstance(shape.get("message"), str), shape
    assert type(shape.get("code")) is int, shape
    data = shape.get("data")
    assert isinstance(data, dict), shape
    name, status = data.get("code"), data.get("httpStatus")
    assert name in JSONRPC_CODES, shape
    assert shape["code"] == JSONRPC_CODES[name], shape
    assert status == HTTP_STATUSES[name], shape
    assert "path" not in data or isinstance(data["path"], str), shape
    assert isinstance(status, int)
    return status


def check_envelope(value: object) -> int:
    """Assert `value` is one tRPC envelope (plain or superjson); return the HTTP status it stands for."""
    assert isinstance(value, dict), value
    assert len(value) == 1, value
    if "error" in value:
        return check_error_shape(unwrap_superjson(value["error"]))
    result = value.get("result")
    assert isinstance(result, dict), value
    assert set(result) <= {"data"}, value
    return 200


def check_json_body(body: bytes, status: int, calls: int | None) -> None:
    """Assert a complete body is one envelope or a non-empty array of them, agreeing with `status`.

    `calls` is the number of paths in a batch (None when unknown); the array has one envelope per path.
    """
    value = msgspec.json.decode(body)  # strict: NaN, Infinity and trailing garbage are errors
    if isinstance(value, list):
        assert value, "an empty batch array"
        statuses = [check_envelope(envelope) for envelope in value]
        assert status == response_status(statuses), (status, statuses)
        assert calls is None or len(value) == calls, (calls, value)
    else:
        assert check_envelope(value) == status, (status, value)


def check_jsonl(chunks: list[bytes]) -> None:
    """v11 JSONL: every chunk is whole lines; a head naming each call, then one envelope chunk per call."""
    assert chunks, "an empty stream"
    for chunk in chunks:
        assert chunk.endswith(b"\n"), chunk
        assert b"\n\n" not in chunk, chunk
        assert not chunk.startswith(b"\n"), chunk
    lines = b"".join(chunks).splitlines()
    head = unwrap_superjson(msgspec.json.decode(lines[0]))
    assert isinstance(head, dict), head
    assert head, head
    assert sorted(head, key=int) == [str(index) for index in range(len(head))], head
    seen: list[int] = []
    for line in lines[1:]:
        call = unwrap_superjson(msgspec.json.decode(line))
        assert isinstance(call, list), call
        assert len(call) == 3, call
        index, state, payload = call
        assert state == 0, call
        assert isinstance(payload, list), call
        assert len(payload) == 1, call
        assert isinstance(payload[0], list), call
        assert len(payload[0]) == 1, call
        check_envelope(payload[0][0])
        seen.append(index)
    assert sorted(seen) == list(range(len(head))), (seen, head)


def check_v10_stream(chunks: list[bytes]) -> None:
    """v10 streaming: `{"i":env\\n`, then `,"j":env\\n`…, then `}`; the whole is a JSON object of envelopes."""
    assert len(chunks) >= 2, chunks
    assert chunks[-1] == b"}", chunks
    for position, chunk in enumerate(chunks[:-1]):
        assert chunk[:1] == (b"{" if position == 0 else b","), chunk
        assert chunk.endswith(b"\n"), chunk
        assert chunk.count(b"\n") == 1, chunk
    value = msgspec.json.decode(b"".join(chunks))
    assert isinstance(value, dict), value
    assert sorted(value, key=int) == [str(index) for index in range(len(value))], value
    for envelope in value.values():
        check_envelope(envelope)


def expected_calls(request: TrpcRequest) -> int | None:
    if request.query.get("batch") != "1":
        return None
    try:
        return len(parse_paths(request.path, is_batch=True))
    except TRPCError:
        return None


async def resolve_fully(resolver: TrpcResolver, request: TrpcRequest) -> tuple[TrpcResponse, list[bytes]]:
    response = await resolver.resolve(request, CallContext(request_id="prop", settings=resolver.settings))
    chunks = [chunk async for chunk in response.stream] if response.stream is not None else []
    return response, chunks


def run_case(resolver: TrpcResolver, request: TrpcRequest) -> tuple[TrpcResponse, list[bytes]]:
    """Resolve and drain the response on a fresh loop; a hang fails after RESOLVE_TIMEOUT_S."""
    try:
        return asyncio.run(asyncio.wait_for(resolve_fully(resolver, request), RESOLVE_TIMEOUT_S))
    except TimeoutError:
        pytest.fail(f"resolve hung for more than {RESOLVE_TIMEOUT_S} s")


def check_response(request: TrpcRequest, response: TrpcResponse, chunks: list[bytes]) -> None:
    assert response.status < 500, (response.status, response.body, chunks)
    assert response.headers.get("content-type") == "application/json", response.headers
    if response.stream is not None:
        assert response.status == 200
        mode = stream_mode(request.headers)
        if mode is StreamMode.JSONL:
            check_jsonl(chunks)
        else:
            assert mode is StreamMode.V10, mode
            check_v10_stream(chunks)
        return
    check_json_body(response.body, response.status, expected_calls(request))
    if response.status == 405:
        assert response.headers.get("allow") in ("GET", "POST", "GET, POST"), response.headers


def max_nesting(text: str) -> int:
    """How deep the brackets of a JSON text go, strings skipped (broken text counts as far as it goes)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            escaped, in_string = (False, True) if escaped else (char == "\\", char != '"')
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def report_reach(request: TrpcRequest) -> None:
    """Hypothesis events for the inputs that once took a 5xx, so the statistics show the strategies reach them."""
    raw = request.query.get("input", "") + (request.body or b"").decode("utf-8", "replace")
    depth = max_nesting(raw)
    if depth >= RECURSION_LIMIT - 100:
        event("input nested near or past msgspec's recursion limit")
    elif depth > MAX_INPUT_DEPTH:
        event("input nested past MAX_INPUT_DEPTH")
    if any(number in raw for number in OUT_OF_RANGE_NUMBERS):
        event("input holds a number out of range")
    if "0001-01-01T" in raw or "9999-12-31T" in raw:
        event("input holds a datetime on the first or last day")
    content_type = request.headers.get("content-type")
    if content_type is not None and not content_type.isascii():
        event("content-type not ASCII" + (" (not UTF-8)" if has_surrogates(content_type) else ""))
    if any(unicodedata.category(char) == "Cc" for char in unquote(request.path)):
        event("control character in the path")


def has_surrogates(text: str) -> bool:
    return any("\ud800" <= char <= "\udfff" for char in text)


# --- 1. the resolver --------------------------------------------------------------------------------------------


@settings(
    max_examples=500,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=requests)
def test_any_request_gets_a_trpc_envelope_below_500(case: Case) -> None:
    response, chunks = run_case(case.resolver, case.request)
    event(f"status {response.status}" + (" stream" if response.stream is not None else ""))
    report_reach(case.request)
    check_response(case.request, response, chunks)


def test_the_strategies_reach_every_kind_of_answer() -> None:
    """Guards the property above against strategies that drift into only ever producing whole-request errors."""
    ok = TrpcRequest("GET", "lookup", {"input": '{"id":"x"}'}, {})
    batch = TrpcRequest("GET", "ping,nope", {"batch": "1"}, {})
    stream = TrpcRequest("GET", "ping,search", {"batch": "1"}, {"trpc-accept": "application/jsonl"})
    v10 = TrpcRequest("GET", "ping,search", {"batch": "1"}, {"trpc-batch-mode": "stream"})
    order = {
        "customer": {"email": "a@b.co"},
        "items": [{"sku": "s", "quantity": 2, "price": 1.5}],
        "placedAt": "2024-01-15T10:30:00Z",
    }
    mutation = TrpcRequest(
        "POST", "orders.create", {}, {"content-type": "application/json"}, json.dumps(order).encode()
    )
    statuses = []
    for request in (ok, batch, stream, v10, mutation):
        response, chunks = run_case(RESOLVERS[0], request)
        check_response(request, response, chunks)
        statuses.append(response.status)
    assert statuses == [200, 207, 200, 200, 200]
    assert b'"placedAt":"2024-01-15T10:30:00.000Z"' in run_case(RESOLVERS[0], mutation)[0].body


TOO_DEEP: Final = f"Input is nested more than {MAX_INPUT_DEPTH} levels deep"


@settings(max_examples=150, deadline=None, database=None)
@given(
    depth=depths | st.integers(1, MAX_INPUT_DEPTH),
    shape=st.sampled_from([nested, nested_objects]),
    superjson=st.booleans(),
    batch=st.booleans(),
    resolver=st.sampled_from(RESOLVERS[:2]),  # transformer auto, json
)
def test_untyped_input_is_refused_past_max_input_depth(
    depth: int, shape: Callable[[int], str], superjson: bool, batch: bool, resolver: TrpcResolver
) -> None:
    """`note` takes any input: nested up to MAX_INPUT_DEPTH it gets it, deeper (msgspec's own limit included) is
    a 400 naming the limit. A superjson envelope read as plain JSON is one level more."""
    text = '{"json":' + shape(depth) + "}" if superjson else shape(depth)
    envelope_read_as_json = superjson and resolver.settings.gateway_trpc_transformer == "json"
    levels = depth + envelope_read_as_json
    query = {"batch": "1"} if batch else {}
    body = ('{"0":' + text + "}" if batch else text).encode()
    request = TrpcRequest("POST", "note", query, {"content-type": "application/json"}, body)
    response, chunks = run_case(resolver, request)
    check_response(request, response, chunks)
    envelope: Any = msgspec.json.decode(response.body)
    if batch:
        [envelope] = envelope
    event("within the limit" if levels <= MAX_INPUT_DEPTH else "past the limit")
    if levels <= MAX_INPUT_DEPTH:
        assert response.status == 200, (levels, response.body[:300])
        received = "list" if shape is nested and not envelope_read_as_json else "dict"
        assert unwrap_superjson(envelope["result"]["data"]) == received
    else:
        assert response.status == 400, (levels, response.body[:300])
        error: Any = unwrap_superjson(envelope["error"])
        assert error["message"] == TOO_DEEP


def javascript_iso(moment: datetime) -> str:
    """What JavaScript's `Date.prototype.toISOString()` writes for this instant (naive read as UTC), worked out
    independently of the gateway: 400 years (one Gregorian cycle: exactly 146097 days) away from
    Python's year bounds, then moved back; years outside 0-9999 are written `+YYYYYY`."""
    shift = 400 if moment.year <= 5000 else -400
    utc = moment.replace(year=moment.year + shift, tzinfo=None) - (moment.utcoffset() or timedelta(0))
    year = utc.year - shift
    year_text = f"{year:04d}" if 0 <= year <= 9999 else f"{year:+07d}"
    return f"{year_text}-{utc:%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def test_javascript_iso_reference() -> None:
    """The reference itself, on the values JavaScript prints for the edges (node -e 'new Date(…).toISOString()')."""
    plus_one = timezone(timedelta(hours=1))
    minus_one = timezone(timedelta(hours=-1))
    assert javascript_iso(datetime(1, 1, 1, tzinfo=plus_one)) == "0000-12-31T23:00:00.000Z"
    assert javascript_iso(datetime(9999, 12, 31, 23, 30, tzinfo=minus_one)) == "+010000-01-01T00:30:00.000Z"
    assert javascript_iso(datetime(2024, 2, 29, 12, 0, 0, 999999)) == "2024-02-29T12:00:00.999Z"
    assert javascript_iso(datetime(4, 3, 1, 0, 30, tzinfo=plus_one)) == "0004-02-29T23:30:00.000Z"


@settings(max_examples=150, deadline=None, database=None)
@given(moment=any_datetimes, superjson=st.booleans(), zulu=st.booleans())
def test_output_datetimes_are_written_as_javascript_does(
    moment: datetime, superjson: bool, zulu: bool
) -> None:
    """Any datetime msgspec reads (years 1-9999, any offset under a day) comes back as JavaScript writes it, also
    when the offset moves it to year 0 or 10000 in UTC."""
    text = moment.isoformat()
    if zulu:
        text = text.replace("+00:00", "Z")
    value: Json = {"since": text}
    request = TrpcRequest("GET", "search", {"input": json.dumps({"json": value} if superjson else value)}, {})
    response, chunks = run_case(RESOLVERS[0], request)
    check_response(request, response, chunks)
    assert response.status == 200, response.body
    data: Any = msgspec.json.decode(response.body)["result"]["data"]
    if superjson:
        assert data["meta"]["values"] == {"since": ["Date"]}, data
        data = data["json"]
    expected = javascript_iso(moment)
    if expected.startswith(("0000-", "+")):
        event("UTC value in year 0 or 10000")
    assert data["since"] == expected, (text, data)


# --- 2. the pure functions ------------------------------------------------------------------------------------------


def outcome(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> tuple[T | None, TRPCError | None]:
    """`function`'s result, or the TRPCError it raised; any other exception propagates (and fails the test)."""
    try:
        return function(*args, **kwargs), None
    except TRPCError as error:
        return None, error


path_texts = st.one_of(
    raw_paths(),
    st.text(),
    st.lists(st.one_of(st.text(max_size=3), broken_escapes, valid_escapes)).map("".join),
)


@settings(max_examples=300, deadline=None, database=None)
@given(raw=path_texts, is_batch=st.booleans())
def test_parse_paths_raises_only_a_whole_request_bad_request(raw: str, is_batch: bool) -> None:
    paths, error = outcome(parse_paths, raw, is_batch=is_batch)
    if error is not None:
        assert error.code is ErrorCode.BAD_REQUEST
        assert error.whole_request
        assert error.message.startswith("Invalid URL-encoding in path")
        return
    assert paths
    assert all(isinstance(path, str) for path in paths)
    assert is_batch or len(paths) == 1
    if "%" not in raw:
        expected = raw.removeprefix("/").rstrip("/")  # the slash after the prefix, and trailing ones
        assert paths == (expected.split(",") if is_batch else [expected])


@settings(max_examples=300, deadline=None, database=None)
@given(
    # Not led or ended by `/`: parse_paths drops those slashes on purpose (as @trpc/server does), see above.
    name=st.text().filter(lambda text: not text.startswith("/") and not text.endswith("/")),
    safe=st.sampled_from(["", "/", ",.~-_", ".,/:@"]),
)
def test_parse_paths_round_trips_percent_encoding(name: str, safe: str) -> None:
    assert parse_paths(quote(name, safe=safe), is_batch=False) == [name]
    assert parse_paths(quote(name, safe=safe), is_batch=True) == name.split(",")


@settings(max_examples=300, deadline=None, database=None)
@given(method=methods | st.just("HEAD"), content_type=st.none() | content_types | header_texts)
def test_check_content_type_raises_only_unsupported_media_type(method: str, content_type: str | None) -> None:
    _, error = outcome(check_content_type, method, content_type)
    if error is not None:
        assert error.code is ErrorCode.UNSUPPORTED_MEDIA_TYPE
        assert error.whole_request
        assert method != "GET"
        return
    assert method == "GET" or content_type is not None


@settings(max_examples=200, deadline=None, database=None)
@given(
    method=methods,
    case=st.sampled_from(["application/json", "APPLICATION/JSON", "Application/Json"]),
    params=st.sampled_from(["", ";", "; charset=utf-8", ";charset=UTF-8; q=1", "  "]),
)
def test_check_content_type_accepts_json_in_any_case_with_any_parameters(
    method: str, case: str, params: str
) -> None:
    check_content_type(method, f" {case}{params}")


header_values = st.sampled_from(STREAM_ACCEPTS) | header_texts


@settings(max_examples=300, deadline=None, database=None)
@given(
    headers=st.dictionaries(
        st.sampled_from(["trpc-accept", "accept", "trpc-batch-mode", "content-type"]) | texts,
        header_values | st.sampled_from(["stream", "text/html, application/jsonl ,x"]),
    )
)
def test_stream_mode_follows_the_header_precedence(headers: dict[str, str]) -> None:
    mode = stream_mode(headers)
    if "trpc-accept" in headers:
        expected = (
            StreamMode.JSONL if headers["trpc-accept"].strip() == "application/jsonl" else StreamMode.NONE
        )
    elif any(part.strip() == "application/jsonl" for part in headers.get("accept", "").split(",")):
        expected = StreamMode.JSONL
    elif headers.get("trpc-batch-mode") == "stream":
        expected = StreamMode.V10
    else:
        expected = StreamMode.NONE
    assert mode is expected


@settings(max_examples=300, deadline=None, database=None)
@given(raw=st.none() | connection_params | st.integers(1, 3000).map(nested))
def test_parse_connection_params_raises_only_parse_error(raw: str | None) -> None:
    params, error = outcome(parse_connection_params, raw)
    if error is not None:
        assert error.code is ErrorCode.PARSE_ERROR
        assert error.whole_request
        return
    assert params is None or all(isinstance(k, str) and isinstance(v, str) for k, v in params.items())
    if params is not None:
        assert params == json.loads(raw or "")


raw_inputs = st.one_of(
    st.none(),
    st.binary(max_size=64),
    input_texts(3).map(str.encode),
    input_texts(3).map(lambda text: text.encode("utf-16")),
)


@settings(max_examples=300, deadline=None, database=None)
@given(
    raw=raw_inputs,
    is_batch=st.booleans(),
    mode=st.sampled_from(["auto", "json", "superjson"]),
    spec=st.sampled_from(INPUT_SPECS),
    index=st.integers(0, 3),
    body_error=st.none() | st.just(ErrorCode.PAYLOAD_TOO_LARGE),
)
def test_input_reader_raises_only_trpc_errors(
    raw: bytes | None, is_batch: bool, mode: str, spec: InputSpec, index: int, body_error: ErrorCode | None
) -> None:
    error = TRPCError(body_error) if body_error is not None else None
    reader = InputReader(raw, is_batch=is_batch, mode=mode, body_error=error)
    value, raised = outcome(reader.read, index, spec)
    if raised is not None:
        assert raised.code in (ErrorCode.BAD_REQUEST, ErrorCode.PAYLOAD_TOO_LARGE), raised
        return
    assert error is None
    if not spec.passthrough and value is not None:
        assert isinstance(value, msgspec.Struct), value
        msgspec.convert(msgspec.to_builtins(value), spec.type)  # a valid value of the declared type


# --- regression tests: bugs the properties above found, now fixed ----------------------------------------------


def resolve_once(request: TrpcRequest, router: Router | None = None) -> TrpcResponse:
    """Resolve with default settings; an exception escaping `resolve` propagates (and fails the test)."""
    registry = REGISTRY if router is None else Registry(router)
    response, chunks = run_case(TrpcResolver(registry, Settings()), request)
    check_response(request, response, chunks)
    return response


DEEP: Final = 5000


@pytest.mark.parametrize(
    "request_",
    [
        pytest.param(TrpcRequest("GET", "lookup", {"input": nested(DEEP)}, {}), id="query-input"),
        pytest.param(
            TrpcRequest("POST", "note", {}, {"content-type": "application/json"}, nested(DEEP).encode()),
            id="mutation-body-any-input",
        ),
        pytest.param(
            TrpcRequest("GET", "lookup", {"input": '{"json":' + nested(DEEP) + "}"}, {}), id="superjson"
        ),
    ],
)
def test_deeply_nested_input_is_a_400_not_a_500(request_: TrpcRequest) -> None:
    assert resolve_once(request_).status == 400


def test_deeply_nested_batch_input_does_not_escape_resolve() -> None:
    request = TrpcRequest("GET", "ping", {"batch": "1", "input": '{"0":' + nested(DEEP) + "}"}, {})
    assert resolve_once(request).status == 200  # ping ignores its input, as @trpc/server does


def test_content_type_that_is_not_utf8_is_a_415() -> None:
    request = TrpcRequest("POST", "note", {}, {"content-type": "\udcff"}, b"{}")
    assert resolve_once(request).status == 415


@pytest.mark.parametrize("transformer_input", [False, True], ids=["json", "superjson"])
def test_datetime_before_year_1_in_utc_does_not_escape_resolve(transformer_input: bool) -> None:
    order: dict[str, object] = {
        "customer": {"email": "a@b.co"},
        "items": [{"sku": "s", "quantity": 1, "price": 1.0}],
        "placedAt": "0001-01-01T00:00:00+01:00",
    }
    body = {"json": order} if transformer_input else order
    request = TrpcRequest(
        "POST", "orders.create", {}, {"content-type": "application/json"}, json.dumps(body).encode()
    )
    assert resolve_once(request).status < 500


@pytest.mark.parametrize(
    "body",
    [nested(600).encode(), ('{"json":' + nested(200) + "}").encode()],
    ids=["json-600", "superjson-200"],
)
def test_deep_input_echoed_back_does_not_escape_resolve(body: bytes) -> None:
    request = TrpcRequest("POST", "echoMut", {}, {"content-type": "application/json"}, body)
    assert resolve_once(request, fixture_router()).status < 500


@pytest.mark.parametrize(
    "request_",
    [
        pytest.param(TrpcRequest("GET", "lookup", {"input": "["}, {}), id="query-input"),
        pytest.param(TrpcRequest("GET", "search", {"input": "[1,"}, {}), id="optional-input"),
        pytest.param(
            TrpcRequest("GET", "lookup", {"input": "1e400"}, {}), id="valid-json-number-out-of-range"
        ),
        pytest.param(
            TrpcRequest("POST", "orders.create", {}, {"content-type": "application/json"}, b"[1,"),
            id="mutation-body",
        ),
    ],
)
def test_malformed_input_of_the_wrong_type_is_a_400(request_: TrpcRequest) -> None:
    assert resolve_once(request_).status == 400
