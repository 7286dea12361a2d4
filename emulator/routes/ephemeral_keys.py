# SPDX-License-Identifier: GPL-3.0-or-later
# Test/demo-only Stripe emulator that patches localstripe (GPL-3.0-or-later); not shipped, no gateway module imports it.
"""`/v1/ephemeral_keys` (absent from localstripe): the customer key PaymentSheet needs to show saved cards.

Create needs `customer` (an existing one) and an explicit `Stripe-Version` header, the API version the mobile SDK
speaks, as Stripe requires; the key records it. Delete revokes the key.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from localstripe.resources import Customer

from emulator.errors import reject_unknown, resource_missing, stripe_error
from emulator.patches import store
from emulator.routes.params import new_id, post_params

__all__ = ["LIFETIME_SECONDS", "routes"]

LIFETIME_SECONDS = 3600
_OBJECT = "ephemeral_key"


@dataclass
class _Key:
    id: str
    secret: str
    customer: str
    stripe_version: str
    created: int
    expires: int

    def export(self, *, with_secret: bool) -> dict[str, Any]:
        exported: dict[str, Any] = {
            "id": self.id,
            "object": _OBJECT,
            "associated_objects": [{"id": self.customer, "type": "customer"}],
            "created": self.created,
            "expires": self.expires,
            "livemode": False,
        }
        if with_secret:
            exported["secret"] = self.secret
        return exported


_keys: dict[str, _Key] = {}
store.on_reset(_keys.clear)


async def _create(request: web.Request) -> web.Response:
    params = await post_params(request)
    params.pop("expand", None)
    customer = params.pop("customer", None)
    reject_unknown(params)
    stripe_version = request.headers.get("Stripe-Version")
    if not stripe_version:
        raise stripe_error(
            400,
            "Stripe-Version header is required to create an ephemeral key: send the mobile SDK's API version.",
        )
    if not isinstance(customer, str) or not customer:
        raise stripe_error(
            400, "Missing required param: customer.", code="parameter_missing", param="customer"
        )
    Customer._api_retrieve(customer)  # resource_missing if unknown
    now = int(time.time())
    key = _Key(
        new_id("ephkey_"),
        "ek_test_" + secrets.token_urlsafe(48),
        customer,
        stripe_version,
        now,
        now + LIFETIME_SECONDS,
    )
    _keys[key.id] = key
    return web.json_response(key.export(with_secret=True))


async def _delete(request: web.Request) -> web.Response:
    key = _keys.pop(request.match_info["id"], None)
    if key is None:
        raise resource_missing(_OBJECT, request.match_info["id"])
    key.expires = int(time.time())
    return web.json_response(key.export(with_secret=False))


routes = [
    web.post("/v1/ephemeral_keys", _create),
    web.delete("/v1/ephemeral_keys/{id}", _delete),
]
