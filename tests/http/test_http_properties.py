"""Property-based tests over a real socket: raw HTTP/1.1 bytes never get a 5xx, a hang or a non-tRPC body.

The resolver-level properties (tests/trpc/test_request_properties.py) are checked here again through aiohttp and the
`/trpc` route, with requests written byte by byte: request targets in origin or absolute form (`http://host/trpc/…`,
as proxies send them) with any path and query, control characters and newlines percent-encoded in the path; tRPC
and junk header lines whose values may hold any byte from 0x80 up, UTF-8 or not (the content-type too); bodies with
any input the resolver-level strategies make (deep nesting, numbers out of range, …), framed by a correct or wrong
`Content-Length`, or chunked, and sent with or without a `Content-Encoding`: gzip or deflate matching the body, or
not matching it (sent as it is, cut short, or in the other coding), codings aiohttp does not know, and br and zstd,
which it knows but cannot decode without libraries this project does not install. For every request:

- an answer arrives within SOCKET_TIMEOUT_S (or, when the client stops short of the `Content-Length` it announced
  and shuts its side down, the server closes the connection within that time);
- its status is below 500;
- a well-formed request (a method, a target and header lines that HTTP/1.1 allows, a body framed correctly, whatever
  its content coding) gets a tRPC answer: `application/json` holding one envelope, a non-empty array of envelopes,
  a JSONL stream or a v10 stream (HEAD: an empty 204);
- a malformed one may instead get aiohttp's own answer, which is not tRPC and is fine: a plain-text 400 from its HTTP
  parser (bad request line, header, framing), 417 for an unknown `Expect`, a 404 for a `CONNECT`. So may a
  well-formed request to a URL outside `/trpc` (`/trpcx`): a plain 404. When the answer is `application/json`, it
  is a tRPC answer as above.

Bodies past MAX_BODY_BYTES are a 413 by design, so a body nested past ~2000 levels (lists; fewer for objects) is
refused unread; deeper inputs reach the parser in the query string. Header lines that HTTP forbids (control
characters, no colon, …) come only from the `header` flaw, so that a request's well-formedness is known; the
headers that frame the message are written by `raw_requests` alone, for the same reason.

How the examples are driven: the server runs once for the module, on its own event loop in a background thread
(`running_gateway`, the same code the other tests use), and each Hypothesis example is a plain blocking socket
exchange from the test's thread. Hypothesis calls a synchronous test body; the alternatives (an async test per
example, a server started inside each example) either share a function-scoped loop across examples, which
Hypothesis cannot reset, or pay a server start per example. A raw socket also sends bytes that no HTTP client
would (broken escapes, bad framing, header lines without a colon).

The bugs these properties found are pinned by regression tests at the end. Request bodies are read as sent,
whatever their `Content-Encoding` (as @trpc/server reads them): a compressed body is simply not JSON.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import queue
import socket
import string
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote, unquote_to_bytes

import msgspec
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gateway.settings import Settings
from tests.support.server import running_gateway
from tests.trpc.test_request_properties import (
    PROCEDURE_NAMES,
    check_envelope,
    check_json_body,
    check_jsonl,
    content_types,
    header_texts,
    input_texts,
    property_router,
    queries,
    raw_paths,
)

SOCKET_TIMEOUT_S: Final = 5.0
MAX_BODY_BYTES: Final = 4096
"""The test server's body limit (settings' minimum is 1024), so `Content-Length` past it is a quick 413."""


# --- the server: one per module, on its own loop in a thread ------------------------------------------------------


@dataclass
class ThreadedGateway:
    port: int
    loop: asyncio.AbstractEventLoop
    stop: asyncio.Event


@pytest.fixture(scope="module")
def gateway_port() -> Iterator[int]:
    started: queue.Queue[ThreadedGateway | BaseException] = queue.Queue()

    async def serve() -> None:
        stop = asyncio.Event()
        settings = Settings(gateway_max_body_bytes=MAX_BODY_BYTES)
        try:
            async with running_gateway(settings, property_router()) as running:
                port = int(running.base_url.rsplit(":", 1)[1])
                started.put(ThreadedGateway(port, asyncio.get_running_loop(), stop))
                await stop.wait()
        except BaseException as error:
            started.put(error)
            raise

    thread = threading.Thread(target=lambda: asyncio.run(serve()), name="gateway-under-test", daemon=True)
    thread.start()
    gateway = started.get(timeout=10)
    if isinstance(gateway, BaseException):
        raise gateway
    try:
        yield gateway.port
    finally:
        gateway.loop.call_soon_threadsafe(gateway.stop.set)
        thread.join(timeout=10)
        assert not thread.is_alive(), "the gateway did not stop"


# --- a minimal HTTP/1.1 client that sends any bytes and reads exactly one response --------------------------------


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str]
    """Lower-case names; values decoded as latin-1."""
    body: bytes


def _dechunk(data: bytes) -> tuple[bytes, bool]:
    """The body of a chunked message and whether its last chunk has arrived."""
    body = bytearray()
    while True:
        line_end = data.find(b"\r\n")
        if line_end < 0:
            return bytes(body), False
        size = int(data[:line_end].split(b";")[0], 16)
        if size == 0:
            return bytes(body), data[line_end + 2 :].startswith(b"\r\n")
        start = line_end + 2
        if len(data) < start + size + 2:
            return bytes(body), False
        body += data[start : start + size]
        data = data[start + size + 2 :]


def skip_interim(data: bytes) -> bytes:
    """`data` after the complete 1xx interim responses at its start (`100 Continue`)."""
    while data.startswith(b"HTTP/") and data[9:10] == b"1" and b"\r\n\r\n" in data:
        data = data.partition(b"\r\n\r\n")[2]
    return data


def parse_response(data: bytes, *, eof: bool, head_request: bool) -> HttpResponse | None:
    """The first final response in `data`, or None while it is incomplete (1xx interim responses are skipped)."""
    while True:
        head, separator, rest = data.partition(b"\r\n\r\n")
        if not separator:
            assert not eof, f"connection closed inside the response head: {data!r}"
            return None
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        if 100 <= status < 200:
            data = rest
            continue
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        if head_request or status in (204, 304):
            return HttpResponse(status, headers, b"")
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body, complete = _dechunk(rest)
        elif "content-length" in headers:
            length = int(headers["content-length"])
            body, complete = rest[:length], len(rest) >= length
        else:
            body, complete = rest, eof
        if complete:
            return HttpResponse(status, headers, body)
        assert not eof, f"connection closed inside the response body: {data!r}"
        return None


def exchange(port: int, request: bytes, *, give_up: bool, head_request: bool) -> HttpResponse | None:
    """Send `request`, then read one response. `give_up`: the body is short of its Content-Length, so shut the
    sending side down; the server may then close without answering (None). A hang fails the test."""
    deadline = time.monotonic() + SOCKET_TIMEOUT_S
    received = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT_S) as sock:
        try:
            sock.sendall(request)
            if give_up:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered (and closed) before reading everything: read the answer
        while True:
            sock.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                pytest.fail(f"no complete response within {SOCKET_TIMEOUT_S} s; received {bytes(received)!r}")
            except ConnectionResetError:
                chunk = b""
            if not chunk and not skip_interim(bytes(received)):  # a `100 Continue` alone is no answer either
                assert give_up, f"connection closed without a response; received {bytes(received)!r}"
                return None
            received += chunk
            response = parse_response(bytes(received), eof=not chunk, head_request=head_request)
            if response is not None:
                return response


# --- strategies: raw requests -------------------------------------------------------------------------------------

# Characters a request target may hold as they are; everything else is percent-encoded when well formed.
TARGET_SAFE: Final = "/%,.~-_:@!$&'()*+;="
WELL_FORMED_METHODS: Final = ["GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "HEAD", "TRACE", "PROPFIND"]


def field_value(text: str) -> bytes:
    """`text` as the bytes of a header value: UTF-8, with lone surrogates U+DC80-U+DCFF back to the one byte each
    stands for in aiohttp's decoding (surrogateescape), other lone ones as their 3 bytes: any byte from 0x80 up, UTF-8
    or not (HTTP's obs-text). ASCII control characters but tab are dropped: HTTP forbids them in a field value (and
    CR/LF would end the line), so lines holding them are generated only as flaws (junk_header_lines)."""
    allowed = [char for char in text if char == "\t" or not (char < " " or char == "\x7f")]
    return b"".join(
        char.encode("utf-8", "surrogateescape" if "\udc80" <= char <= "\udcff" else "surrogatepass")
        for char in allowed
    )


header_values = header_texts.map(field_value)


def one_in(n: int) -> st.SearchStrategy[bool]:
    """True about once in `n` draws (the rare value last: Hypothesis favours the first one)."""
    return st.sampled_from([False] * (n - 1) + [True])


@dataclass(frozen=True)
class RawRequest:
    data: bytes
    well_formed: bool
    """Valid HTTP/1.1 (or 1.0), which aiohttp hands to the application."""
    trpc_url: bool
    """The target is `/trpc` or below `/trpc/`, so the application hands it to the tRPC route."""
    give_up: bool
    """The body is shorter than its Content-Length: the client shuts down its side after sending."""
    method: str
    coding: bytes | None
    """The Content-Encoding sent, if any."""
    asks_for_a_stream: bool
    """A header asks for a streamed batch (`trpc-accept`/`Accept: application/jsonl`, `trpc-batch-mode: stream`)."""
    http11: bool
    """The request line says HTTP/1.1 (not 1.0, nor no version at all: HTTP/0.9 to aiohttp)."""

    def __repr__(self) -> str:
        return (
            f"RawRequest(well_formed={self.well_formed}, trpc_url={self.trpc_url}, give_up={self.give_up}, "
            f"data={self.data!r})"
        )


@st.composite
def targets(draw: st.DrawFn, flawed: bool) -> tuple[str, bool]:
    """A request target and whether it is a tRPC URL (`/trpc`, or below `/trpc/`); `flawed` adds a character
    HTTP does not allow in a target."""
    known = st.lists(st.sampled_from(PROCEDURE_NAMES), min_size=1, max_size=3).map(",".join)
    path = quote(draw(st.one_of(known, raw_paths())), safe=TARGET_SAFE)
    target = "/trpc" + draw(st.sampled_from(["/", "/", "/", ""])) + path
    query = draw(queries(path.count(",") + 1))
    bare_question_mark = draw(st.booleans())
    if query or bare_question_mark:
        target += "?" + "&".join(f"{quote(k, safe='')}={quote(v, safe=',:@/')}" for k, v in query.items())
    if draw(one_in(6)):
        target += draw(
            st.sampled_from(["&&=", "&=x", "&batch", "&input=%ZZ", "&input=%7B", "+", ";x", "#frag"])
        )
    trpc_url = target == "/trpc" or target.startswith(("/trpc/", "/trpc?"))
    if draw(one_in(6)):  # absolute-form, as a client talking to a proxy sends it
        target = draw(st.sampled_from(["http://gateway.test", "http://127.0.0.1:8080", "HTTPS://x"])) + target
    if flawed:
        junk = draw(st.sampled_from([" ", "\x7f", "\x00", "\xff", '"', "{", "|", "\t", "\n", "\r"]))
        at = draw(st.integers(1, len(target)))
        target = target[:at] + junk + target[at:]
    return target, trpc_url


# Random header names leave out the ones that frame the message or change the connection: `raw_requests` writes
# those itself (Content-Length, Transfer-Encoding, Expect, Connection: close, Host), and must know them to tell a
# well-formed request and when to give up waiting; `Upgrade` would switch protocols. Content-Encoding is written by
# `content_codings`, which knows whether the body matches it.
FRAMING_HEADERS: Final = {
    "host",
    "connection",
    "content-length",
    "transfer-encoding",
    "content-encoding",
    "expect",
    "upgrade",
}
tchar_names = st.text(string.ascii_letters + string.digits + "-", min_size=1, max_size=12).filter(
    lambda name: name.lower() not in FRAMING_HEADERS
)
junk_header_lines = st.sampled_from(
    [
        b"NoColonHere",
        b" folded-continuation",
        b"Bad Name: x",
        b"X-Ctl: a\x01b",
        b"X-Nul: \x00",
        b": empty-name",
        b"Content-Length: abc",
        b"Host: second-host",
        b"Expect: junk",
        b"Transfer-Encoding: chunked, gzip",
    ]
)


@st.composite
def header_lines(draw: st.DrawFn, method: str, flawed: bool) -> list[bytes]:
    """Header lines without framing headers; `flawed` adds a line HTTP does not allow."""
    lines = [b"Host: gateway.test", b"Connection: close"]
    if method != "GET" or draw(st.booleans()):
        content_type = draw(
            one_in(6).flatmap(lambda odd: content_types if odd else st.just("application/json"))
        )
        lines.append(b"Content-Type: " + field_value(content_type))
    if draw(one_in(4)):
        stream_name = draw(st.sampled_from([b"trpc-accept", b"Accept", b"TRPC-Batch-Mode"]))
        stream_value = draw(st.sampled_from([b"application/jsonl", b"stream", b"*/*", b"\xff\xfe"]))
        lines.append(stream_name + b": " + stream_value)
    for name, value in draw(st.lists(st.tuples(tchar_names, header_values), max_size=3)):
        lines.append(name.encode() + b": " + value)
    if draw(one_in(10)):
        lines.append(b"Expect: 100-continue")
    if flawed:
        lines.insert(draw(st.integers(1, len(lines))), draw(junk_header_lines))
    return lines


@st.composite
def chunked(draw: st.DrawFn, body: bytes) -> bytes:
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=4)))
    pieces = [body[start:end] for start, end in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    encoded = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces if piece)
    return encoded + b"0\r\n\r\n"


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


CODERS: Final[dict[str, Callable[[bytes], bytes]]] = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,  # RFC 9110's deflate: a zlib stream
    "raw-deflate": raw_deflate,  # what some clients send as deflate; aiohttp reads it too
}


@st.composite
def content_codings(draw: st.DrawFn, body: bytes) -> tuple[bytes | None, bytes]:
    """A Content-Encoding value (None: no header) and the body to send with it: encoded to match; not matching
    (as it is, cut short, or encoded with another coding); a coding aiohttp does not know (the body is read as it
    is); or one it knows but cannot decode here (br and zstd need libraries this project does not install)."""
    if not draw(one_in(3)):
        return None, body
    kind = draw(st.sampled_from(["matching", "matching", "not-matching", "unknown", "not-installed"]))
    if kind == "unknown":
        coding = draw(st.sampled_from([b"identity", b"x-gzip", b"compress", b"gzip, gzip", b"", b"\xff"]))
        return coding, body
    if kind == "not-installed":
        return draw(st.sampled_from([b"br", b"zstd"])), body
    coder = draw(st.sampled_from(sorted(CODERS)))
    name = "deflate" if coder == "raw-deflate" else coder
    coding = draw(st.sampled_from([name, name.upper(), f" {name} "])).encode()
    encoded = CODERS[coder](body)
    if kind == "not-matching":
        other = CODERS[draw(st.sampled_from(sorted(set(CODERS) - {coder})))](body)
        encoded = draw(st.sampled_from([body, other, encoded[: len(encoded) // 2], encoded[1:]]))
    return coding, encoded


STREAM_REQUESTS: Final = {
    b"trpc-accept: application/jsonl",
    b"accept: application/jsonl",
    b"trpc-batch-mode: stream",
}
FLAWS: Final = ["method", "target", "version", "header", "framing"]
"""About one request in four has one of these flaws, which make it malformed HTTP."""


@st.composite
def raw_requests(draw: st.DrawFn) -> RawRequest:
    flaw = draw(st.sampled_from(FLAWS)) if draw(one_in(4)) else None
    if flaw == "method":
        method = draw(st.sampled_from(["get", "FOO", "CONNECT", "G T"]))
    else:
        method = draw(st.sampled_from(["GET", "POST"] * 6 + WELL_FORMED_METHODS))
    target, trpc_url = draw(targets(flawed=flaw == "target"))
    if flaw == "version":
        version = draw(st.sampled_from(["HTTP/2.0", "HTTP/9.9", "HTTX/1.1", "HTTP/1.1 x", ""]))
    else:
        version = draw(st.sampled_from(["HTTP/1.1"] * 5 + ["HTTP/1.0"]))
    lines = draw(header_lines(method, flawed=flaw == "header"))
    calls = target.count(",") + 1
    body_kind = draw(st.sampled_from(["input", "input", "bytes", "none"]))
    if body_kind == "input":
        body = draw(input_texts(calls)).encode()
    elif body_kind == "bytes":
        body = draw(st.binary(max_size=64))
    else:
        body = b""
    coding, body = draw(content_codings(body))
    if coding is not None:
        lines.append(b"Content-Encoding: " + coding)
    if flaw == "framing":
        framing = draw(st.sampled_from(["short", "long", "bad-chunked"]))
    else:
        framing = draw(st.sampled_from(["length", "length", "chunked", "none", "too-large"]))
    if framing == "length" or (framing == "none" and body):
        lines.append(b"Content-Length: %d" % len(body))
    elif framing == "chunked":
        lines.append(b"Transfer-Encoding: chunked")
        body = draw(chunked(body))
    elif framing == "short":  # the rest of the body reads as a next request: aiohttp's 400
        body += b"{}"
        lines.append(b"Content-Length: %d" % (len(body) - 2))
    elif framing == "long":  # the client gives up: see `exchange`
        lines.append(b"Content-Length: %d" % (len(body) + 10))
    elif framing == "too-large":  # the route answers without reading it: 413 (a GET never reads it)
        lines.append(b"Content-Length: %d" % (MAX_BODY_BYTES * 4))
    elif framing == "bad-chunked":
        lines.append(b"Transfer-Encoding: chunked")
        body = b"zz\r\n" + body + b"\r\n0\r\n\r\n"
    head = f"{method} {target} {version}".rstrip().encode("utf-8", "surrogateescape")
    data = b"\r\n".join([head, *lines]) + b"\r\n\r\n" + body
    asks_for_a_stream = any(line.lower() in STREAM_REQUESTS for line in lines)
    return RawRequest(
        data,
        flaw is None,
        trpc_url,
        framing == "long",
        method,
        coding,
        asks_for_a_stream,
        version == "HTTP/1.1",
    )


# --- checks -------------------------------------------------------------------------------------------------------


def check_trpc_answer(response: HttpResponse) -> None:
    """A tRPC body: one envelope, an array of them, a v10 stream (an object by call index) or JSONL lines."""
    assert response.headers.get("content-type") == "application/json", response
    try:
        value = msgspec.json.decode(response.body)
    except msgspec.DecodeError:
        assert response.status == 200, response  # only a stream is not one JSON value
        check_jsonl([response.body])
        return
    if isinstance(value, dict) and value and not set(value) & {"result", "error"}:
        assert response.status == 200, response  # a v10 stream: {"0": envelope, ...}
        for envelope in value.values():
            check_envelope(envelope)
        return
    check_json_body(response.body, response.status, None)


AIOHTTP_OWN_STATUSES: Final = {400, 404, 413, 417}


def report_reach(request: RawRequest) -> None:
    """Hypothesis events for the requests that once took a 5xx or a non-tRPC answer, so the statistics show the
    strategies reach them."""
    head = request.data.partition(b"\r\n\r\n")[0]
    request_line, _, header_block = head.partition(b"\r\n")
    target = request_line.split(b" ")[1] if request_line.count(b" ") >= 1 else b""
    if request.coding is not None:
        event("Content-Encoding sent")
    if target[:4].lower() == b"http":
        event("absolute-form target")
    if any(byte < 0x20 or byte == 0x7F for byte in unquote_to_bytes(target.split(b"?")[0])):
        event("control character in the path")
    try:
        header_block.decode()
    except UnicodeDecodeError:
        event("header bytes that are not UTF-8")


@settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(request=raw_requests())
def test_raw_http_requests_get_a_trpc_answer_below_500(gateway_port: int, request: RawRequest) -> None:
    response = exchange(
        gateway_port, request.data, give_up=request.give_up, head_request=request.method == "HEAD"
    )
    if response is None:
        event("closed without answering (the client gave up on its body)")
        return
    event(f"status {response.status}" + ("" if request.well_formed else " (malformed request)"))
    report_reach(request)
    assert response.status < 500, response
    if request.method == "HEAD" and response.status == 204:
        return
    if response.headers.get("content-type") == "application/json":
        check_trpc_answer(response)
        return
    # Not a tRPC answer: only aiohttp itself may send one, for what is not well-formed HTTP, or a plain 404 for a
    # URL outside /trpc (`/trpcx`).
    assert not request.well_formed or (not request.trpc_url and response.status == 404), response
    assert response.status in AIOHTTP_OWN_STATUSES, response


def test_the_raw_client_reads_trpc_answers(gateway_port: int) -> None:
    """The exchange helper itself: plain, 100-continue, chunked stream and HEAD answers."""
    plain = exchange(
        gateway_port,
        b"GET /trpc/ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        give_up=False,
        head_request=False,
    )
    assert plain is not None
    assert plain.body == b'{"result":{"data":"pong"}}'
    stream = exchange(
        gateway_port,
        b"GET /trpc/ping,ping?batch=1 HTTP/1.1\r\nHost: x\r\ntrpc-accept: application/jsonl\r\n\r\n",
        give_up=False,
        head_request=False,
    )
    assert stream is not None
    assert stream.headers["transfer-encoding"] == "chunked"
    check_trpc_answer(stream)
    post = exchange(
        gateway_port,
        b"POST /trpc/orders.touch HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Type: application/json\r\n"
        b"Content-Length: 0\r\nConnection: close\r\n\r\n",
        give_up=False,
        head_request=False,
    )
    assert post is not None
    assert post.body == b'{"result":{}}'
    head = exchange(
        gateway_port, b"HEAD /trpc/ping HTTP/1.1\r\nHost: x\r\n\r\n", give_up=False, head_request=True
    )
    assert head is not None
    assert head.status == 204


# --- regression tests: bugs these properties found, now fixed ---------------------------------------------------


@pytest.mark.parametrize(
    ("coding", "body"),
    [
        (b"gzip", gzip.compress(b'{"id":"x"}')),
        (b"gzip", b"{}"),
        (b"deflate", b"{}"),  # once a deflate stream that never ended: aiohttp's plain-text 400 `deflate`
        (b"br", b"{}"),  # once aiohttp's plain-text 400 naming a library to install
        (b"zstd", b"{}"),
    ],
    ids=["gzip", "gzip-mismatch", "deflate-unfinished", "br", "zstd"],
)
def test_bodies_are_read_as_sent_whatever_their_content_encoding(
    gateway_port: int, coding: bytes, body: bytes
) -> None:
    """No decompression (no bombs, no failures inside aiohttp's parser): what is not valid input is a tRPC 400."""
    request = (
        b"POST /trpc/orders.create HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n"
        b"Content-Encoding: " + coding + b"\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    response = exchange(gateway_port, request, give_up=False, head_request=False)
    assert response is not None
    assert response.status == 400, response
    check_trpc_answer(response)
    assert json.loads(response.body)["error"]["data"]["code"] == "BAD_REQUEST"


def test_content_type_that_is_not_utf8_is_a_415(gateway_port: int) -> None:
    request = (
        b"POST /trpc/orders.touch HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: \xff\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    response = exchange(gateway_port, request, give_up=False, head_request=False)
    assert response is not None
    assert response.status == 415, response


@pytest.mark.parametrize("path", [b"/trpc/%0A", b"/trpc/ping%0A,ping?batch=1"])
def test_newline_in_the_path_gets_a_trpc_404(gateway_port: int, path: bytes) -> None:
    request = b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    response = exchange(gateway_port, request, give_up=False, head_request=False)
    assert response is not None
    check_trpc_answer(response)


@pytest.mark.parametrize(
    ("version", "stream_header"),
    [
        (b" HTTP/1.0", b"trpc-accept: application/jsonl"),
        (b" HTTP/1.0", b"trpc-batch-mode: stream"),
        (b"", b"trpc-accept: application/jsonl"),
    ],
    ids=["jsonl-http1.0", "v10-http1.0", "jsonl-no-version"],
)
def test_streamed_batch_over_http10_is_answered_in_one_body(
    gateway_port: int, version: bytes, stream_header: bytes
) -> None:
    request = b"GET /trpc/ping,ping?batch=1" + version + b"\r\nHost: x\r\n" + stream_header + b"\r\n\r\n"
    response = exchange(gateway_port, request, give_up=False, head_request=False)
    assert response is not None
    assert response.status < 500, response
    if version:
        check_trpc_answer(response)
