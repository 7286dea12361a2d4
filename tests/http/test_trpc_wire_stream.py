"""Streamed batches over a real socket: v11 JSONL (`httpBatchStreamLink`) and v10 `trpc-batch-mode: stream`.

Covers the conformance cases of shared/reference/trpc-wire.md section 10 about streaming: 44 and 45 (JSONL by
`trpc-accept` or `Accept`), 46 (a stream must be a batch), 47 (calls arrive in the order they finish, errors as
their envelope), 49 (whole-request errors are a plain non-2xx JSON object), 51 (v10's stream format) and 59
(superjson JSONL: each line transformed as a whole), plus which header picks which format (5.1, 5.5) and
production streams without stacks.

The framing is checked on the raw bytes (each line ends in `\\n`, no empty line, the head line comes first; v10:
`{"i":…` then `,"j":…` lines, then `}`). What the lines mean is checked by resolving them the way the client does
(5.3): a head of encoded values whose promise chunks may nest, so both the reference server's nested encoding and
the simpler encodings of 5.4 are accepted. Async iterables (kind 1) belong to generators, which are not built yet.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
import pytest

from gateway.settings import Settings
from tests.http.test_trpc_wire import (
    EPOCH,
    JSON_CT,
    NEXT_DAY,
    PRODUCTION,
    SJ_UNDEFINED,
    Reply,
    contains_key,
    echoed,
    error,
    json_body,
    ok,
    pop_stack,
    q,
    send,
)
from tests.support.fixture_router import fixture_router
from tests.support.server import RunningGateway, running_gateway

JSONL: Final = {"trpc-accept": "application/jsonl"}
V10_STREAM: Final = {
    "trpc-batch-mode": "stream",
    "content-type": "application/json",
}  # v10 sends both, even on GET
UNDEFINED: Final = object()
"""An encoded value's empty slot (`[]`): JavaScript `undefined`."""
SLOW_MS: Final = 60


# -- JSONL: framing and decoding ---------------------------------------------------------------------------------


def jsonl_lines(reply: Reply) -> list[bytes]:
    """The raw lines of a 200 JSONL response, after checking its head and framing (5.2, 5.3)."""
    assert reply.status == 200, reply.body
    assert reply.headers.get("content-type") == "application/json"  # the default, not application/jsonl (5.2)
    assert reply.headers.get("vary") == "trpc-accept, accept"
    assert reply.body.endswith(b"\n"), "the last line must end in \\n, or the client loses it"
    lines = reply.body.split(b"\n")[:-1]
    assert all(line.strip() for line in lines), "an empty line breaks the client"
    return lines


@dataclass(frozen=True)
class Resolved:
    envelopes: dict[int, Any]
    """Call index -> the envelope its head entry resolves to."""
    settled_at: dict[int, int]
    """Call index -> the number of the line (0 = head) by which its envelope was complete."""


def resolve_jsonl(lines: list[Any]) -> Resolved:
    """Resolve parsed JSONL lines as the client does: head[i], then its promise chunks, however deeply nested."""
    head, *chunk_lines = lines
    assert isinstance(head, dict)
    chunks: dict[int, tuple[int, int, Any]] = {}
    for number, line in enumerate(chunk_lines, start=1):
        chunk_id, status, payload = line
        assert chunk_id not in chunks, f"promise chunk {chunk_id} settled twice"
        chunks[chunk_id] = (number, status, payload)
    used: set[int] = set()

    def decode(encoded: list[Any]) -> tuple[Any, int]:
        slot, *refs = encoded
        value: Any = slot[0] if slot else UNDEFINED
        settled = 0
        for key, kind, chunk_id in refs:
            assert kind == 0, "only promises are expected: async iterables come from generators"
            number, status, payload = chunks[chunk_id]
            used.add(chunk_id)
            if status == 0:
                inner, inner_settled = decode(payload)
            else:
                assert status == 1
                inner, inner_settled = {"$rejected": payload}, number
            settled = max(settled, number, inner_settled)
            if key is None:
                value = inner
            else:
                value = dict(value)
                if inner is UNDEFINED:
                    del value[key]  # `{"result":{}}` for undefined data, as over plain HTTP
                else:
                    value[key] = inner
        return value, settled

    envelopes: dict[int, Any] = {}
    settled_at: dict[int, int] = {}
    assert list(head) == [str(i) for i in range(len(head))], "head keys are the batch indexes, in order"
    for key, encoded in head.items():
        envelopes[int(key)], settled_at[int(key)] = decode(encoded)
    assert used == set(chunks), "every chunk belongs to a call"
    return Resolved(envelopes, settled_at)


def plain_jsonl(reply: Reply) -> Resolved:
    lines = jsonl_lines(reply)
    assert lines[0].startswith(b'{"0":'), "the head line comes first"
    return resolve_jsonl([json.loads(line) for line in lines])


# -- v10: framing ------------------------------------------------------------------------------------------------


def v10_entries(reply: Reply) -> list[tuple[int, Any]]:
    """(index, envelope) in the order sent, after checking v10's framing (5.5)."""
    assert reply.status == 200, reply.body
    assert "trpc-batch-mode" in [token.strip() for token in reply.headers.get("vary", "").split(",")]
    body = reply.body
    assert body.startswith(b'{"')
    *lines, last = body.split(b"\n")
    assert last == b"}"
    entries: list[tuple[int, Any]] = []
    for number, line in enumerate(lines):
        assert line.startswith(b'{"' if number == 0 else b',"'), line
        [(key, envelope)] = json.loads(b"{" + line[1:] + b"}").items()
        entries.append((int(key), envelope))
    assert json.loads(body) == {str(index): envelope for index, envelope in entries}  # one JSON object in all
    return entries


# -- JSONL (cases 44-47, 49) -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "tail", "headers", "body", "expected"),
    [
        pytest.param("GET", "/noInput?batch=1&input=%7B%7D", JSONL, None, [ok("pong")], id="case44"),
        pytest.param(
            "GET",
            "/noInput?batch=1&input=%7B%7D",
            {"accept": "application/jsonl"},
            None,
            [ok("pong")],
            id="case45-accept",
        ),
        pytest.param(
            "GET",
            "/noInput?batch=1",
            {"accept": "text/html, application/jsonl"},
            None,
            [ok("pong")],
            id="accept-list",
        ),
        pytest.param(
            "GET",
            "/greet,retUndefined,echo,nope?batch=1&input=" + q({"0": {"name": "A"}, "2": None}),
            JSONL,
            None,
            [
                ok({"hello": "A"}),
                {"result": {}},
                echoed(None),
                error("NOT_FOUND", 'No procedure found on path "nope"', "nope"),
            ],
            id="several-calls",
        ),
        pytest.param(
            "POST",
            "/add,echoMut?batch=1",
            {**JSONL, **JSON_CT},
            b'{"0":{"a":2,"b":3}}',
            [ok(5), echoed(undefined=True)],
            id="mutations",
        ),
    ],
)
async def test_jsonl_stream(
    gateway: RunningGateway,
    http: aiohttp.ClientSession,
    method: str,
    tail: str,
    headers: dict[str, str],
    body: bytes | None,
    expected: list[Any],
) -> None:
    reply = await send(http, method, gateway.trpc_url + tail, headers=headers, body=body)

    resolved = plain_jsonl(reply)
    assert [resolved.envelopes[i] for i in range(len(expected))] == expected
    assert len(resolved.envelopes) == len(expected)


async def test_case46_a_stream_must_be_a_batch(gateway: RunningGateway, http: aiohttp.ClientSession) -> None:
    reply = await send(http, "GET", gateway.trpc_url + "/noInput", headers=JSONL)

    assert json_body(reply, 400) == error(
        "BAD_REQUEST", "Streaming requests must be batched (you can do a batch of 1)"
    )


async def test_case47_calls_arrive_as_they_finish(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    tail = "/slow,noInput,boom?batch=1&input=" + q({"0": {"ms": SLOW_MS}})

    reply = await send(http, "GET", gateway.trpc_url + tail, headers=JSONL)

    resolved = plain_jsonl(reply)
    assert resolved.envelopes[0] == ok({"waited": SLOW_MS})
    assert resolved.envelopes[1] == ok("pong")
    # the error travels as that call's envelope, not as a rejected chunk
    assert pop_stack(resolved.envelopes[2]) == error("INTERNAL_SERVER_ERROR", "kaboom", "boom")
    assert resolved.settled_at[0] > resolved.settled_at[1]
    assert resolved.settled_at[0] > resolved.settled_at[2]


@pytest.mark.parametrize(
    ("settings", "tail", "message"),
    [
        pytest.param(
            Settings(gateway_trpc_allow_batching=False),
            "/noInput?batch=1&input=%7B%7D",
            "Batching is not enabled on the server",
            id="case49-batching-disabled",
        ),
        pytest.param(
            Settings(gateway_trpc_max_batch_size=2),
            "/noInput,noInput,noInput?batch=1&input=%7B%7D",
            "Batch call exceeds maximum size",
            id="too-many",
        ),
        pytest.param(
            Settings(),
            "/noInput,add?batch=1",
            "Cannot mix procedure types in call: query, mutation",
            id="mixed-types",
        ),
        pytest.param(Settings(), "/no%ZZ?batch=1", 'Invalid URL-encoding in path "no%ZZ"', id="bad-path"),
    ],
)
async def test_case49_a_stream_that_fails_as_a_whole_is_a_plain_json_error(
    http: aiohttp.ClientSession, settings: Settings, tail: str, message: str
) -> None:
    async with running_gateway(settings, fixture_router()) as gateway:
        reply = await send(http, "GET", gateway.trpc_url + tail, headers=JSONL)

    assert json_body(reply, 400) == error("BAD_REQUEST", message)


async def test_production_streams_carry_no_stack(http: aiohttp.ClientSession) -> None:
    async with running_gateway(PRODUCTION, fixture_router()) as gateway:
        reply = await send(http, "GET", gateway.trpc_url + "/boom,nope?batch=1&input=%7B%7D", headers=JSONL)

    resolved = plain_jsonl(reply)
    assert resolved.envelopes == {
        0: error("INTERNAL_SERVER_ERROR", "Internal server error", "boom"),
        1: error("NOT_FOUND", 'No procedure found on path "nope"', "nope"),
    }
    assert not contains_key([json.loads(line) for line in jsonl_lines(reply)], "stack")


# -- which header picks which format (5.1, 5.5) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "kind"),
    [
        pytest.param(
            {"trpc-accept": "application/json", "accept": "application/jsonl"}, "array", id="trpc-accept-wins"
        ),
        pytest.param({"accept": "application/json"}, "array", id="plain-accept"),
        pytest.param({"accept": "application/jsonl-x"}, "array", id="accept-entry-must-be-exact"),
        pytest.param({**V10_STREAM, **JSONL}, "jsonl", id="trpc-accept-over-v10"),
        pytest.param(V10_STREAM, "v10", id="v10"),
    ],
)
async def test_stream_format_is_picked_by_header(
    gateway: RunningGateway, http: aiohttp.ClientSession, headers: dict[str, str], kind: str
) -> None:
    reply = await send(http, "GET", gateway.trpc_url + "/noInput?batch=1", headers=headers)

    if kind == "array":
        assert json_body(reply, 200) == [ok("pong")]
    elif kind == "jsonl":
        assert plain_jsonl(reply).envelopes == {0: ok("pong")}
    else:
        assert v10_entries(reply) == [(0, ok("pong"))]


# -- v10 streaming (case 51) -------------------------------------------------------------------------------------


async def test_case51_v10_stream_in_finishing_order(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    tail = "/slow,noInput,throwCode?batch=1&input=" + q({"0": {"ms": SLOW_MS}, "2": "FORBIDDEN"})

    reply = await send(http, "GET", gateway.trpc_url + tail, headers=V10_STREAM)

    entries = v10_entries(reply)
    assert reply.headers.get("content-type") == "application/json"
    assert entries[-1] == (0, ok({"waited": SLOW_MS}))  # the slow call finishes last
    assert sorted(entries[:-1]) == [
        (1, ok("pong")),
        (2, error("FORBIDDEN", "thrown FORBIDDEN", "throwCode")),
    ]


async def test_v10_stream_of_one_mutation(gateway: RunningGateway, http: aiohttp.ClientSession) -> None:
    reply = await send(
        http, "POST", gateway.trpc_url + "/add?batch=1", headers=V10_STREAM, body=b'{"0":{"a":1,"b":2}}'
    )

    assert reply.body == b'{"0":{"result":{"data":3}}\n}'
    assert v10_entries(reply) == [(0, ok(3))]


# -- superjson JSONL (case 59) -----------------------------------------------------------------------------------


def superjson_lines(reply: Reply) -> list[dict[str, Any]]:
    """Each line of a superjson JSONL response is serialized as a whole: `{"json":<line>[,"meta":…]}` (7.1)."""
    parsed: list[dict[str, Any]] = []
    for line in jsonl_lines(reply):
        assert line.startswith(b'{"json":'), line
        value = json.loads(line)
        assert set(value) <= {"json", "meta"}
        parsed.append(value)
    assert isinstance(parsed[0]["json"], dict), "the head line (an object; chunks are arrays) comes first"
    return parsed


def annotated_dates(line: dict[str, Any]) -> dict[str, Any]:
    """Each `meta.values` path of a line -> the JSON value found there, checking each annotation is `Date`."""
    found: dict[str, Any] = {}
    for path, annotation in line.get("meta", {}).get("values", {}).items():
        assert annotation == ["Date"], (path, annotation)
        spot: Any = line["json"]
        for part in path.split("."):
            spot = spot[int(part)] if isinstance(spot, list) else spot[part]
        found[path] = spot
    return found


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        pytest.param("/noInput?batch=1&input=" + q({"0": SJ_UNDEFINED}), [ok("pong")], id="case59"),
        pytest.param(
            "/throwCode,nope?batch=1&input=" + q({"0": {"json": "FORBIDDEN"}, "1": SJ_UNDEFINED}),
            [
                error("FORBIDDEN", "thrown FORBIDDEN", "throwCode"),
                error("NOT_FOUND", 'No procedure found on path "nope"', "nope"),
            ],
            id="errors",
        ),
    ],
)
async def test_case59_superjson_jsonl(
    gateway: RunningGateway, http: aiohttp.ClientSession, tail: str, expected: list[Any]
) -> None:
    reply = await send(http, "GET", gateway.trpc_url + tail, headers=JSONL)

    lines = superjson_lines(reply)
    resolved = resolve_jsonl([line["json"] for line in lines])
    assert [resolved.envelopes[i] for i in range(len(expected))] == expected
    assert len(resolved.envelopes) == len(expected)


async def test_case59_superjson_jsonl_annotates_dates_in_their_line(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    date_input = {"json": {"at": EPOCH}, "meta": {"values": {"at": ["Date"]}, "v": 1}}
    tail = "/when?batch=1&input=" + q({"0": date_input})

    reply = await send(http, "GET", gateway.trpc_url + tail, headers=JSONL)

    lines = superjson_lines(reply)
    resolved = resolve_jsonl([line["json"] for line in lines])
    assert resolved.envelopes == {0: ok({"at": EPOCH, "nextDay": NEXT_DAY})}
    dates = {path: value for line in lines for path, value in annotated_dates(line).items()}
    assert sorted(dates.values()) == [EPOCH, NEXT_DAY]
    assert sorted(path.rsplit(".", 1)[-1] for path in dates) == ["at", "nextDay"]
