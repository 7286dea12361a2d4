"""`python -m tests.support.serve_fixture PORT`: the gateway's own serve loop with a router whose `hold` procedure
prints `holding` when it starts and answers after a while, so a test can stop the server mid-request."""

from __future__ import annotations

import asyncio
import sys

from gateway.auth.access import PUBLIC
from gateway.context import CallContext
from gateway.http.app import create_app
from gateway.http.server import serve
from gateway.logs import configure_logging
from gateway.registry import Router
from gateway.settings import Settings

HOLD_SECONDS = 1.0


def main() -> None:
    router = Router()

    @router.query(access=PUBLIC)
    async def hold(ctx: CallContext) -> str:
        print("holding", flush=True)
        await asyncio.sleep(HOLD_SECONDS)
        return "released"

    configure_logging("INFO")
    settings = Settings(gateway_shutdown_timeout=10)
    serve(create_app(settings, router), settings, "127.0.0.1", int(sys.argv[1]))


if __name__ == "__main__":
    main()
