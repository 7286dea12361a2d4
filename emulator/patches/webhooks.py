# SPDX-License-Identifier: GPL-3.0-or-later
# Test/demo-only Stripe emulator that patches localstripe (GPL-3.0-or-later); not shipped, no gateway module imports it.
"""Webhook delivery that a reset can stop, events stamped with the pinned API version, and a way to unregister.

localstripe sends each event about 1 s after it happens, from a fire-and-forget task. A test that resets the
emulator must not receive the previous test's events, so deliveries are tracked and a reset cancels the pending
ones. Every event also said `api_version: "2017-08-15"`; a webhook endpoint pinned like the gateway gets its own.
"""

from __future__ import annotations

import asyncio
from typing import Any

import localstripe.resources
import localstripe.webhooks
from localstripe.resources import Event

from emulator.patches import store

__all__ = ["apply", "emit", "unregister_webhook"]

_deliveries: set[asyncio.Future[None]] = set()


def emit(event_type: str, obj: Any) -> None:
    """Record a Stripe event about `obj` (exported now, as Stripe snapshots it) and deliver it to the webhooks."""
    localstripe.resources.schedule_webhook(Event(event_type, obj))


def unregister_webhook(webhook_id: str) -> bool:
    """Forget a webhook registered with `/_config/webhooks/<id>`; False if there was none."""
    return localstripe.webhooks._webhooks.pop(webhook_id, None) is not None


def _schedule_webhook(event: Any) -> None:
    delivery: asyncio.Future[None] = asyncio.ensure_future(localstripe.webhooks._send_webhook(event))
    _deliveries.add(delivery)  # also keeps the task referenced until it is done
    delivery.add_done_callback(_deliveries.discard)


def _cancel_deliveries() -> None:
    for delivery in list(_deliveries):
        delivery.cancel()


def apply(api_version: str) -> None:
    # resources.py imported the function by name, so its module global is the one to replace.
    localstripe.resources.schedule_webhook = _schedule_webhook
    store.on_reset(_cancel_deliveries)

    original_init = Event.__init__

    def init(self: Any, event_type: str, data: Any) -> None:
        original_init(self, event_type, data)
        self.api_version = api_version

    Event.__init__ = init
