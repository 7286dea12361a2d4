"""The gateway under test: the real application (`create_app`) with the benchmark procedures, logging as in production.

    .venv/bin/python bench/gateway_app.py PORT

Serves `bench.greet` (query, `{"name": str}` -> `{"hello": name}`) and `bench.add` (mutation, `{"a": int, "b": int}`
-> `a + b`) under `/trpc`. Logging is configured exactly as `gateway serve` does it (`configure_logging("INFO")`):
one JSON line per request on stdout, which bench/run.py sends to a file under bench/results/, so producing and
writing the line is part of what is measured. `create_app` records metrics on every request, as in production, and
answers go out through the gateway's coalesced writes (`gateway.http.coalesce`), as `gateway serve`'s do.
"""

from __future__ import annotations

import sys

import msgspec

from gateway.auth.access import PUBLIC
from gateway.context import CallContext
from gateway.http.app import create_app
from gateway.http.server import serve
from gateway.logs import configure_logging
from gateway.registry import Router
from gateway.settings import Settings


class GreetInput(msgspec.Struct):
    name: str


class Greeting(msgspec.Struct):
    hello: str


class AddInput(msgspec.Struct):
    a: int
    b: int


def bench_router() -> Router:
    """The benchmark routes, declared the way production procedures are (see procedures/). Neither waits on
    anything, so both are plain functions, like the peer's resolvers and like `stripe.getConfig`."""
    bench = Router()

    @bench.query(access=PUBLIC)
    def greet(ctx: CallContext, input: GreetInput) -> Greeting:
        return Greeting(hello=input.name)

    @bench.mutation(access=PUBLIC)
    def add(ctx: CallContext, input: AddInput) -> int:
        return input.a + input.b

    root = Router()
    root.include("bench", bench)
    return root


def main() -> None:
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        sys.exit("usage: gateway_app.py PORT")
    port = int(sys.argv[1])
    # Production settings, but for the mutation rate limits: wrk is one client making thousands of mutations a
    # second, which the per-client limit (60 a minute) would answer with 429s. Everything else (logging, metrics,
    # security headers, the concurrency cap, the guard) runs as in production.
    settings = Settings(gateway_port=port, gateway_rate_limit_client=0, gateway_rate_limit_user=0)
    configure_logging(settings.gateway_log_level)
    serve(create_app(settings, bench_router()), settings, "127.0.0.1", port)  # exactly as `gateway serve`


if __name__ == "__main__":
    main()
