"""`gateway maintenance on|off|status`: the seed's "Désactivation des Paiements", as one switch in the store.

While it is on, every replica refuses payment mutations (`stripe.createPaymentIntent`, `stripe.cancelPaymentIntent`,
`stripe.refund`) with SERVICE_UNAVAILABLE and the message; queries, Stripe's webhooks, metrics and `gateway refund`
keep working, and `/metrics/payments/health` reports it (degraded, still 200). Replicas see a switch within a
second. Exit codes: 0 done, 2 the store (no database at DATABASE_URL, unavailable).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import msgspec

from gateway.maintenance import CACHE_SECONDS, DEFAULT_MESSAGE, MaintenanceSwitch
from gateway.ops.common import existing_store, operator_name
from gateway.settings import Settings
from gateway.store import Maintenance, StoreError

__all__ = ["add_command", "describe"]

EXIT_STORE = 2
EXIT_USAGE = 2


def describe(switch: Maintenance) -> str:
    """What a person reads: on or off, since when, by whom, and the message the apps get."""
    if not switch.changed_at:
        return "maintenance: off (never switched on)\n"
    state = "ON: payment mutations are refused" if switch.enabled else "off"
    lines = [f"maintenance: {state}", f"  since:   {switch.changed_at}", f"  by:      {switch.changed_by}"]
    if switch.enabled:
        lines.append(f"  message: {switch.message}")
    return "\n".join(lines) + "\n"


async def _run(settings: Settings, action: str, message: str | None) -> Maintenance:
    async with existing_store(settings) as store:
        switch = MaintenanceSwitch(store)
        if action == "status":
            return await switch.current()
        return await switch.switch(action == "on", message or DEFAULT_MESSAGE, operator_name())


def _command(args: argparse.Namespace, settings: Settings) -> int:
    if args.message is not None and args.action != "on":
        print("gateway maintenance: --message goes with `on`", file=sys.stderr)
        return EXIT_USAGE
    try:
        switch = asyncio.run(_run(settings, args.action, args.message))
    except StoreError as error:
        print(f"gateway maintenance: store: {error}", file=sys.stderr)
        return EXIT_STORE
    if args.json:
        sys.stdout.write(msgspec.json.encode(switch).decode() + "\n")
    else:
        sys.stdout.write(describe(switch))
        if args.action != "status":
            sys.stdout.write(f"every replica applies it within {CACHE_SECONDS:g} s\n")
    return 0


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "maintenance",
        help="switch payments off for every replica (queries and webhooks keep working), on again, or show it",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", choices=["on", "off", "status"], help="switch on, off, or show the switch")
    parser.add_argument(
        "--message",
        help=f"with `on`: what the app is told (SERVICE_UNAVAILABLE's message; default: {DEFAULT_MESSAGE!r})",
    )
    parser.add_argument("--json", action="store_true", help="print the switch as JSON")
    parser.set_defaults(run=_command, logs_to_stderr=True)
