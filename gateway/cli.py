"""The `gateway` command line: one entry point for the server and the operators' commands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from loguru import logger

from gateway.http.app import create_app
from gateway.http.server import serve
from gateway.logs import configure_logging
from gateway.settings import SETTING_DOCS, ConfigurationError, Settings, load_settings

__all__ = ["main"]


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    host = args.host or settings.gateway_host
    port = args.port if args.port is not None else settings.gateway_port
    logger.bind(host=host, port=port, mode=settings.node_env, testMode=settings.stripe_test_mode).info(
        "gateway_starting"
    )
    serve(create_app(settings), settings, host, port)
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigurationError as error:
        print(f"gateway: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.gateway_log_level, settings.gateway_log_file)
    result: int = args.run(args, settings)
    return result


if __name__ == "__main__":
    sys.exit(main())
