"""The `gateway` command line: one entry point for the server and the operators' commands."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

import msgspec
from loguru import logger

from gateway.dev_pay import TEST_CARDS, dev_pay, settings_for_dev_commands
from gateway.errors import TRPCError
from gateway.http.app import create_app
from gateway.http.server import serve
from gateway.local_stripe import LocalStripe
from gateway.logs import configure_logging
from gateway.settings import SETTING_DOCS, ConfigurationError, Settings, load_settings
from gateway.store import StoreError
from gateway.stripe_api import StripeCallError

__all__ = ["main"]


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    host = args.host or settings.gateway_host
    port = args.port if args.port is not None else settings.gateway_port
    settings = msgspec.structs.replace(settings, gateway_host=host, gateway_port=port)
    emulator = LocalStripe.start(settings) if settings.uses_emulator else None
    try:
        if emulator is not None:
            settings = emulator.configure(settings)
        logger.bind(host=host, port=port, mode=settings.node_env, testMode=settings.stripe_test_mode).info(
            "gateway_starting"
        )
        serve(create_app(settings), settings, host, port)
    finally:
        if emulator is not None:
            emulator.stop()
    return 0


def _dev_pay(args: argparse.Namespace, settings: Settings) -> int:
    settings = settings_for_dev_commands(settings)
    try:
        status = asyncio.run(dev_pay(settings, args.order_id, args.card, authenticate=not args.fail_3ds))
    except TRPCError as error:
        print(f"gateway dev pay: {error.message}", file=sys.stderr)
        return 1
    except StripeCallError as failure:
        print(f"gateway dev pay: Stripe refused: {failure.message}", file=sys.stderr)
        return 1
    except StoreError as error:
        print(f"gateway dev pay: store: {error}", file=sys.stderr)
        return 1
    print(f"order {args.order_id}: {status}")
    return 0


def _parser() -> argparse.ArgumentParser:
    variables = "\n".join(f"  {name:<36} {doc}" for name, doc in SETTING_DOCS.items())
    parser = argparse.ArgumentParser(
        prog="gateway",
        description="tRPC-compatible gateway for Stripe payments.",
        epilog=f"Configuration comes from the environment and ./.env (the environment wins):\n{variables}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the gateway (HTTP: /trpc, ...)")
    serve.add_argument("--host", help="address to listen on (default: GATEWAY_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default: GATEWAY_PORT, 3000)")
    serve.set_defaults(run=_serve)
    dev = commands.add_parser("dev", help="development tools (test mode only)")
    dev_commands = dev.add_subparsers(dest="dev_command", required=True, metavar="TOOL")
    pay = dev_commands.add_parser(
        "pay", help="pay an order with a test card, as the app's PaymentSheet would (test mode only)"
    )
    pay.add_argument("--order-id", required=True, help="the order to pay")
    pay.add_argument("--card", choices=sorted(TEST_CARDS), default="visa", help="test card (default: visa)")
    pay.add_argument("--fail-3ds", action="store_true", help="with --card 3ds: fail the authentication")
    pay.set_defaults(run=_dev_pay)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigurationError as error:
        print(f"gateway: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.gateway_log_level, settings.gateway_log_file)
    try:
        result: int = args.run(args, settings)
    except ConfigurationError as error:
        print(f"gateway: {error}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main())
