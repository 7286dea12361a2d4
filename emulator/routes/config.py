# SPDX-License-Identifier: GPL-3.0-or-later
# Test/demo-only Stripe emulator that patches localstripe (GPL-3.0-or-later); not shipped, no gateway module imports it.
"""Test-only `/_config/…` routes the emulator adds to localstripe's (no authentication, like localstripe's own).

- `DELETE /_config/webhooks/<id>`: unregister a webhook (localstripe can only register or replace one);
- `POST /_config/payment_method_domains/<id or domain_name>` with `apple_pay=inactive` (any wallet, `active` or
  `inactive`; optional `error_message`): switch a registered domain's wallet status, answers the domains changed.
"""

from __future__ import annotations

from aiohttp import web

from emulator.patches.webhooks import unregister_webhook
from emulator.routes.params import post_params
from emulator.routes.payment_method_domains import set_wallet_status

__all__ = ["routes"]


async def _unregister_webhook(request: web.Request) -> web.Response:
    if not unregister_webhook(request.match_info["id"]):
        raise web.HTTPNotFound(text=f"no webhook {request.match_info['id']}")
    return web.Response()


async def _set_domain_wallets(request: web.Request) -> web.Response:
    changed = set_wallet_status(request.match_info["key"], await post_params(request))
    return web.json_response({"object": "list", "data": changed})


routes = [
    web.delete("/_config/webhooks/{id}", _unregister_webhook),
    web.post("/_config/payment_method_domains/{key}", _set_domain_wallets),
]
