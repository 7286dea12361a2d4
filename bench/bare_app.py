"""The ceiling: plain aiohttp handlers doing the gateway's work for the benchmark routes, and nothing else.

    .venv/bin/python bench/bare_app.py PORT [--coalesce-writes]

Same routes and the same wire format as bench/gateway_app.py (tRPC envelopes `{"result":{"data":…}}`, a batch as a
JSON array of envelopes), the same parsing and validation (module-level msgspec decoders into structs), but no
middleware, no request id, no logging, no registry: what aiohttp + msgspec cost on their own. Bad input gets a
minimal 400 envelope; this server only has to be right for the benchmark's requests.

With `--coalesce-writes` its connections write through the gateway's `CoalescingTransport`
(gateway/http/coalesce.py: a loop pass's responses leave together at its end), as the gateway's do: the ceiling
for the gateway's own machinery when both send their answers the same way. bench/run.py measures both variants.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import Any, Final

import msgspec
from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from gateway.http.coalesce import WriteCoalescer


class GreetInput(msgspec.Struct):
    name: str


class Greeting(msgspec.Struct):
    hello: str


class AddInput(msgspec.Struct):
    a: int
    b: int


class Result(msgspec.Struct):
    data: Any


class Envelope(msgspec.Struct):
    result: Result


_greet_decoder: Final = msgspec.json.Decoder(GreetInput)
_add_decoder: Final = msgspec.json.Decoder(AddInput)
_batch_decoder: Final = msgspec.json.Decoder(dict[str, msgspec.Raw])
_encoder: Final = msgspec.json.Encoder()
_BAD_REQUEST: Final = (
    b'{"error":{"message":"bad request","code":-32600,"data":{"code":"BAD_REQUEST","httpStatus":400}}}'
)
_NOT_FOUND: Final = (
    b'{"error":{"message":"not found","code":-32004,"data":{"code":"NOT_FOUND","httpStatus":404}}}'
)
_PREFIX: Final = "/trpc/"


def _greet(raw: bytes | memoryview) -> Greeting:
    return Greeting(hello=_greet_decoder.decode(raw).name)


def _json(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/json")


async def query(request: web.Request) -> web.Response:
    """GET /trpc/bench.greet?input=… and GET /trpc/bench.greet,…?batch=1&input={"0":…}."""
    paths = request.path[len(_PREFIX) :]
    raw = request.query.get("input", "").encode()
    try:
        if request.query.get("batch") != "1":
            if paths != "bench.greet":
                return _json(_NOT_FOUND, 404)
            return _json(_encoder.encode(Envelope(Result(_greet(raw)))))
        inputs = _batch_decoder.decode(raw)
        outputs: list[Envelope] = []
        for index, path in enumerate(paths.split(",")):
            if path != "bench.greet":
                return _json(_NOT_FOUND, 404)
            outputs.append(Envelope(Result(_greet(inputs[str(index)]))))
        return _json(_encoder.encode(outputs))
    except (msgspec.DecodeError, KeyError):  # ValidationError is a DecodeError
        return _json(_BAD_REQUEST, 400)


async def add(request: web.Request) -> web.Response:
    """POST /trpc/bench.add with a JSON body."""
    if request.content_type != "application/json":
        return _json(_BAD_REQUEST, 415)
    try:
        value = _add_decoder.decode(await request.read())
    except msgspec.DecodeError:
        return _json(_BAD_REQUEST, 400)
    return _json(_encoder.encode(Envelope(Result(value.a + value.b))))


def create_app() -> web.Application:
    app = web.Application()
    app.router.add_post("/trpc/bench.add", add)
    app.router.add_get("/trpc/{paths}", query)
    return app


class _CoalescingHandler(RequestHandler):
    coalescer: WriteCoalescer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        super().connection_made(self.coalescer.wrap(transport))


class _CoalescingServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _CoalescingHandler(self, loop=self._loop, **self._kwargs)


class _CoalescingRunner(web.AppRunner):
    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _CoalescingServer  # the same server, making handlers that coalesce their writes
        _CoalescingHandler.coalescer = WriteCoalescer(asyncio.get_running_loop())
        return server


async def _serve_coalesced(port: int) -> None:
    runner = _CoalescingRunner(create_app(), access_log=None, handle_signals=True)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await asyncio.Event().wait()  # until SIGTERM
    finally:
        await runner.cleanup()


def main() -> None:
    arguments = sys.argv[1:]
    coalesce = "--coalesce-writes" in arguments
    if coalesce:
        arguments.remove("--coalesce-writes")
    if len(arguments) != 1 or not arguments[0].isdigit():
        sys.exit("usage: bare_app.py PORT [--coalesce-writes]")
    port = int(arguments[0])
    if coalesce:
        with contextlib.suppress(web.GracefulExit):
            asyncio.run(_serve_coalesced(port))
    else:
        web.run_app(create_app(), host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
