"""`gateway token`: sign a bearer token with JWT_SECRET, for an operator or a developer.

The app's users get their tokens from the app's own sign-in service, signed with the same JWT_SECRET; this command
is for the people around it: an admin calling `stripe.refund` over HTTP, staff testing QR verification, a
developer trying the offline demo (which generates its JWT_SECRET on first use). The token goes to stdout and
nowhere else; the log line `token_issued` says who asked for whom, with which roles, never the token.
"""

from __future__ import annotations

import argparse
import re
import sys

from loguru import logger

from gateway.auth.tokens import issue_token
from gateway.dev_secrets import with_development_secrets
from gateway.ops.common import operator_name
from gateway.settings import Settings

__all__ = ["add_command", "parse_duration"]

_DURATION = re.compile(r"^(\d+)([smhd]?)$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_TTL_SECONDS = 7 * 86400


def parse_duration(text: str) -> int:
    """`90`, `90s`, `15m`, `8h`, `2d` → seconds (1 second to 7 days)."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 900, 15m, 8h, 1d)")
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if not 1 <= seconds <= MAX_TTL_SECONDS:
        raise argparse.ArgumentTypeError(f"a token lives from 1 second to 7 days, not {text!r}")
    return seconds


def _command(args: argparse.Namespace, settings: Settings) -> int:
    settings = with_development_secrets(settings)
    if (
        not settings.jwt_secret
    ):  # pragma: no cover - production requires JWT_SECRET, development generates one
        print("gateway token: JWT_SECRET is not set", file=sys.stderr)
        return 2
    roles = frozenset(args.role or ())
    token = issue_token(settings, args.user, roles, args.ttl)
    logger.bind(operator=operator_name(), user=args.user, roles=sorted(roles), ttlSeconds=args.ttl).info(
        "token_issued"
    )
    print(token)
    return 0


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    token = commands.add_parser(
        "token",
        help="sign a bearer token with JWT_SECRET (for admins, staff and the offline demo); prints only the token",
    )
    token.add_argument("--user", required=True, help="the user id (`sub`) the token names")
    token.add_argument(
        "--role",
        action="append",
        choices=["admin", "staff"],
        help="a role the token carries (repeatable): admin (refunds), staff (QR verification)",
    )
    token.add_argument(
        "--ttl",
        type=parse_duration,
        default=900,
        metavar="DURATION",
        help="lifetime (default 15m; at most 7d)",
    )
    token.set_defaults(run=_command, logs_to_stderr=True)
