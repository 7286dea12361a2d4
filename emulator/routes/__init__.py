# SPDX-License-Identifier: GPL-3.0-or-later
# Test/demo-only Stripe emulator that patches localstripe (GPL-3.0-or-later); not shipped, no gateway module imports it.
"""Routes the emulator adds to localstripe's application: Stripe APIs it lacks, and test-only switches."""

from __future__ import annotations

from aiohttp import web

from emulator.routes import config, ephemeral_keys, payment_method_domains, webhook_endpoints

__all__ = ["add_routes"]


def add_routes(app: web.Application) -> None:
    app.router.add_routes(
        [*payment_method_domains.routes, *ephemeral_keys.routes, *webhook_endpoints.routes, *config.routes]
    )
