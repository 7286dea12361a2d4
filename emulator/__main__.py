# SPDX-License-Identifier: GPL-3.0-or-later
# Test/demo-only Stripe emulator that patches localstripe (GPL-3.0-or-later); not shipped, no gateway module imports it.
"""`python -m emulator [--host 127.0.0.1] [--port 0] [--webhook-url URL --webhook-secret whsec_…]`.

Prints exactly one line on stdout, `listening <port>`, once it accepts connections (so a launcher can wait for it
without sleeping), logs to stderr, and exits 0 on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import warnings
from collections.abc import Sequence

from aiohttp import web
from localstripe.webhooks import register_webhook

from emulator.app import build_app

__all__ = ["main"]

_logger = logging.getLogger("emulator")


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m emulator", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="IPv4 address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one (default)")
    parser.add_argument("--webhook-url", help="register a webhook delivering to this URL")
    parser.add_argument("--webhook-secret", help="its signing secret (whsec_…); required with --webhook-url")
    parser.add_argument("--webhook-events", help="comma-separated event types to deliver (default: all)")
    parser.add_argument(
        "--webhook-id", default="emulator", help="its id under /_config/webhooks/ (default emulator)"
    )
    parser.add_argument("--api-version", default="2024-06-20", help="api_version of emitted events")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = parser.parse_args(argv)
    if args.webhook_url and not args.webhook_secret:
        parser.error("--webhook-url needs --webhook-secret")
    if args.webhook_url and not args.webhook_url.startswith(("http://", "https://")):
        parser.error("--webhook-url must be an http(s) URL")
    return args


async def _serve(app: web.Application, host: str, port: int) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_port = runner.addresses[0][1]
        _logger.info("Stripe emulator (localstripe, patched) on http://%s:%d", host, bound_port)
        print(f"listening {bound_port}", flush=True)
        await stopping.wait()
        _logger.info("stopping")
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # localstripe registers plain-function handlers, which aiohttp deprecates; nothing to act on here.
    warnings.filterwarnings("ignore", message="Bare functions are deprecated", category=DeprecationWarning)
    app = build_app(api_version=args.api_version)
    if args.webhook_url:
        events = (
            [e.strip() for e in args.webhook_events.split(",") if e.strip()] if args.webhook_events else None
        )
        register_webhook(args.webhook_id, args.webhook_url, args.webhook_secret, events)
        _logger.info(
            "webhook %s -> %s (%s)", args.webhook_id, args.webhook_url, ", ".join(events or ["all events"])
        )
    asyncio.run(_serve(app, args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
