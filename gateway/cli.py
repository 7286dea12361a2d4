"""The `gateway` command line: one entry point for the server and the operators' commands."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

import msgspec
from loguru import logger

from gateway.dev_pay import TEST_CARDS, dev_pay, settings_for_dev_commands
from gateway.dev_secrets import with_development_secrets
from gateway.errors import TRPCError
from gateway.http.app import create_app
from gateway.http.server import serve
from gateway.local_stripe import LocalStripe
from gateway.logs import configure_logging
from gateway.ops import check_payments, db, maintenance, refunds, schema, smoke, token
from gateway.settings import SETTING_DOCS, ConfigurationError, Settings, load_settings
from gateway.store import StoreError, WebhookEventStatus
from gateway.stripe_api import StripeCallError
from gateway.webhooks.commands import (
    DEFAULT_LIST_LIMIT,
    CommandResult,
    list_events,
    replay_event,
    show_event,
)

__all__ = ["main"]


WORKERS_REFUSED = """\
gateway serve: --workers {workers} is refused. Every gateway process keeps its own metrics, so {workers} workers
behind one port would answer each Prometheus scrape (and /metrics/payments) with one random worker's figures,
never the total. Run {workers} replicas instead, each on a port of its own (gateway serve --port 3001,
--port 3002, ...), behind your load balancer, and let Prometheus scrape each one: README, "Running several
replicas". They may share a SQLite file on one host; use PostgreSQL (DATABASE_URL=postgresql://...) across hosts.
"""


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    if args.workers != 1:
        print(WORKERS_REFUSED.format(workers=args.workers), end="", file=sys.stderr)
        return 2
    host = args.host or settings.gateway_host
    port = args.port if args.port is not None else settings.gateway_port
    settings = with_development_secrets(
        msgspec.structs.replace(settings, gateway_host=host, gateway_port=port)
    )
    emulator = LocalStripe.start(settings) if settings.uses_emulator else None
    try:
        if emulator is not None:
            settings = emulator.configure(settings)
        logger.bind(host=host, port=port, mode=settings.node_env, testMode=settings.stripe_test_mode).info(
            "gateway_starting"
        )
        serve(create_app(settings), settings, host, port)
    except StoreError as error:  # at start-up: no database, or one this version must not run on
        logger.bind(error=str(error)).error("gateway_start_failed")
        print(f"gateway serve: store: {error}", file=sys.stderr)
        return 2
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


def _print(result: CommandResult) -> int:
    try:
        sys.stdout.write(result.out)
        sys.stdout.flush()
    except BrokenPipeError:  # `gateway webhooks list | head`: the reader is gone, and that is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.stderr.write(result.err)
    return result.code


def _webhooks_list(args: argparse.Namespace, settings: Settings) -> int:
    status = WebhookEventStatus(args.status) if args.status is not None else None
    return _print(
        asyncio.run(
            list_events(settings, limit=args.limit, status=status, order_id=args.order_id, as_json=args.json)
        )
    )


def _webhooks_show(args: argparse.Namespace, settings: Settings) -> int:
    return _print(asyncio.run(show_event(settings, args.event_id)))


def _webhooks_replay(args: argparse.Namespace, settings: Settings) -> int:
    return _print(asyncio.run(replay_event(settings, args.event_id)))


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more: {value}")
    return value


def _add_webhook_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    webhooks = commands.add_parser(
        "webhooks", help="Stripe's events as the gateway recorded them: list, show, replay (the store only)"
    )
    # The output is the command's; the log lines (a replay logs what it applied) go to stderr and the log file.
    webhooks.set_defaults(logs_to_stderr=True)
    actions = webhooks.add_subparsers(dest="webhooks_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="recent events, newest first, one line each")
    listing.add_argument(
        "--limit",
        type=_positive_int,
        default=DEFAULT_LIST_LIMIT,
        metavar="N",
        help=f"at most N events (default {DEFAULT_LIST_LIMIT})",
    )
    listing.add_argument(
        "--status",
        choices=[status.value for status in WebhookEventStatus],
        help="only the events in this status",
    )
    listing.add_argument("--order-id", metavar="ID", help="only the events applied to this order")
    listing.add_argument("--json", action="store_true", help="one JSON object per line (without the payload)")
    listing.set_defaults(run=_webhooks_list)
    show = actions.add_parser("show", help="one event, with its payload")
    show.add_argument("event_id", metavar="EVENT_ID")
    show.set_defaults(run=_webhooks_show)
    replay = actions.add_parser(
        "replay", help="apply a recorded event again (idempotent: an effect already there is not made twice)"
    )
    replay.add_argument("event_id", metavar="EVENT_ID")
    replay.set_defaults(run=_webhooks_replay)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return value


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
    serve.add_argument(
        "--workers",
        type=_positive,
        default=1,
        metavar="N",
        help="processes on this port: only 1 (run several replicas on their own ports instead: see the README)",
    )
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
    _add_webhook_commands(commands)
    for operations in (check_payments, smoke, refunds, maintenance, schema, token, db):
        operations.add_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if getattr(args, "checks_configuration", False) or not getattr(args, "needs_settings", True):
        # `gateway check-payments` reports on a configuration the server would refuse, so it reads it itself
        # (through the same loader, gateway.settings) instead of stopping here at the first problem; `gateway
        # smoke` tests a deployment elsewhere and needs none (a CI job with NODE_ENV=production and no keys).
        configure_logging("WARNING", stream=sys.stderr)
        code: int = args.run(args, None)
        return code
    try:
        settings = load_settings()
    except ConfigurationError as error:
        print(f"gateway: {error}", file=sys.stderr)
        return 2
    log_stream = sys.stderr if getattr(args, "logs_to_stderr", False) else None
    configure_logging(settings.gateway_log_level, settings.gateway_log_file, stream=log_stream)
    try:
        result: int = args.run(args, settings)
    except ConfigurationError as error:
        print(f"gateway: {error}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main())
