# SPDX-License-Identifier: GPL-3.0-or-later
# Test/demo-only Stripe emulator that patches localstripe (GPL-3.0-or-later); not shipped, no gateway module imports it.
"""`/v1/payment_method_domains` (absent from localstripe): where Apple Pay and Google Pay may show on the web.

Create (`domain_name`, `enabled`), list (`domain_name`, `enabled`, `limit`, `starting_after`), retrieve, update
(`enabled`) and validate. Every wallet is `active` on a new domain; tests make one `inactive` with
`POST /_config/payment_method_domains/<id or domain_name>` (see `set_wallet_status`). As on Stripe, `status_details`
(`{error_message}`) is present only while a wallet is inactive.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from localstripe.resources import try_convert_to_bool, try_convert_to_int

from emulator.errors import reject_unknown, resource_missing, stripe_error
from emulator.patches import store
from emulator.routes.params import new_id, post_params, query_params

__all__ = ["WALLETS", "routes", "set_wallet_status"]

WALLETS = ("amazon_pay", "apple_pay", "google_pay", "klarna", "link", "paypal")
_OBJECT = "payment_method_domain"
_URL = "/v1/payment_method_domains"


@dataclass
class _Domain:
    id: str
    domain_name: str
    enabled: bool
    created: int = field(default_factory=lambda: int(time.time()))
    inactive: dict[str, str] = field(default_factory=dict)
    """Wallet -> the error message Stripe would give for it; wallets not listed are active."""

    def export(self) -> dict[str, Any]:
        exported: dict[str, Any] = {
            "id": self.id,
            "object": _OBJECT,
            "created": self.created,
            "domain_name": self.domain_name,
            "enabled": self.enabled,
            "livemode": False,
        }
        for wallet in WALLETS:
            if wallet in self.inactive:
                exported[wallet] = {
                    "status": "inactive",
                    "status_details": {"error_message": self.inactive[wallet]},
                }
            else:
                exported[wallet] = {"status": "active"}
        return exported


_domains: dict[str, _Domain] = {}
store.on_reset(_domains.clear)


def _bool(value: Any, param: str) -> bool:
    converted = try_convert_to_bool(value)
    if type(converted) is not bool:
        raise stripe_error(400, "Invalid boolean", code="parameter_invalid_boolean", param=param)
    return converted


def _domain(domain_id: str) -> _Domain:
    domain = _domains.get(domain_id)
    if domain is None:
        raise resource_missing(_OBJECT, domain_id)
    return domain


def set_wallet_status(key: str, statuses: dict[str, Any]) -> list[dict[str, Any]]:
    """Test switch: set wallets (`apple_pay=inactive`, …) of the domains whose id or name is `key`.

    An optional `error_message` sets the `status_details.error_message` of the wallets made inactive.
    """
    message = statuses.pop("error_message", None) or "The domain is not verified for this payment method."
    matches = [d for d in _domains.values() if key in (d.id, d.domain_name)]
    if not matches:
        raise resource_missing(_OBJECT, key)
    for wallet, status in statuses.items():
        if wallet not in WALLETS or status not in ("active", "inactive"):
            raise stripe_error(
                400, f"Expected <wallet>=active|inactive with a wallet among {', '.join(WALLETS)}."
            )
    for domain in matches:
        for wallet, status in statuses.items():
            if status == "inactive":
                domain.inactive[wallet] = message
            else:
                domain.inactive.pop(wallet, None)
    return [d.export() for d in matches]


async def _create(request: web.Request) -> web.Response:
    params = await post_params(request)
    domain_name = params.pop("domain_name", None)
    enabled = _bool(params.pop("enabled", True), "enabled")
    reject_unknown(params)
    if not isinstance(domain_name, str) or not domain_name:
        raise stripe_error(
            400, "Missing required param: domain_name.", code="parameter_missing", param="domain_name"
        )
    if "://" in domain_name or "/" in domain_name:
        raise stripe_error(400, f"Invalid domain name: {domain_name}", param="domain_name")
    domain = _Domain(new_id("pmd_"), domain_name.lower(), enabled)
    _domains[domain.id] = domain
    return web.json_response(domain.export())


async def _list(request: web.Request) -> web.Response:
    params = query_params(request)
    params.pop("expand", None)
    domain_name = params.pop("domain_name", None)
    enabled = params.pop("enabled", None)
    limit = try_convert_to_int(params.pop("limit", 10))
    starting_after = params.pop("starting_after", None)
    reject_unknown(params)
    if type(limit) is not int or not 1 <= limit <= 100:
        raise stripe_error(400, "Invalid integer: limit must be between 1 and 100", param="limit")
    found = list(reversed(_domains.values()))  # newest first, as Stripe lists
    if domain_name is not None:
        found = [d for d in found if d.domain_name == str(domain_name).lower()]
    if enabled is not None:
        wanted = _bool(enabled, "enabled")
        found = [d for d in found if d.enabled is wanted]
    if starting_after is not None:
        ids = [d.id for d in found]
        found = found[ids.index(starting_after) + 1 :] if starting_after in ids else []
    page = found[:limit]
    return web.json_response(
        {"object": "list", "url": _URL, "has_more": len(found) > limit, "data": [d.export() for d in page]}
    )


async def _retrieve(request: web.Request) -> web.Response:
    return web.json_response(_domain(request.match_info["id"]).export())


async def _update(request: web.Request) -> web.Response:
    domain = _domain(request.match_info["id"])
    params = await post_params(request)
    params.pop("expand", None)
    enabled = params.pop("enabled", None)
    reject_unknown(params)
    if enabled is not None:
        domain.enabled = _bool(enabled, "enabled")
    return web.json_response(domain.export())


async def _validate(request: web.Request) -> web.Response:
    """Stripe re-checks the domain here; the emulator keeps the statuses the test switch set."""
    return web.json_response(_domain(request.match_info["id"]).export())


routes = [
    web.post(_URL, _create),
    web.get(_URL, _list),
    web.get(_URL + "/{id}", _retrieve),
    web.post(_URL + "/{id}", _update),
    web.post(_URL + "/{id}/validate", _validate),
]
